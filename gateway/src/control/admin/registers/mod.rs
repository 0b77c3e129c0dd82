//! Registers: create one, import many, list with filters, show, suspend, resume, replace
//! the FN.
//!
//! Input rows are taken as strings and checked field by field, so that every broken field
//! is reported with its name and rule (`FieldError`), and nothing is written unless the
//! whole call is valid (imports: unless `partial`). Checks: RNM 16 digits whose check code
//! matches owner INN and KKT serial; INN control digits; FN exactly 16 digits and not
//! owned by another register; name 1–256 characters; tariff an existing plan; paid_until
//! RFC 3339; time_zone a zone of the tz database.
//!
//! Import semantics (`POST /v1/registers/import`): rows are upserts keyed by RNM. A new
//! RNM is created (status active). For an existing one, given fields replace stored ones;
//! empty/absent `group`, `tariff`, `paid_until` leave the stored value as it is; a
//! different `fn_number` is an FN replacement (the old FN goes to the history, replaced
//! now). A row that changes nothing counts as `unchanged`, so importing the same file
//! twice is idempotent.
//!
//! Files: [`input`] (row validation and what a row does to storage), [`view`] (what the
//! API shows, shared helpers), [`write`] (create, import), [`read`] (list, show),
//! [`status`] (suspend, resume, replace the FN). Imports only its siblings of `admin`.

mod input;
mod read;
mod status;
mod view;
mod write;

pub use read::ListItem;
pub use view::RegisterView;
pub(crate) use view::diff;
pub(crate) use read::collect;
pub use write::{ImportOutcome, ImportRequest};

use super::Route;
use super::auth::Role;
use read::{list, show};
use status::{replace_fn, resume, set_time_zone, suspend};
use write::{create, import};

/// Most rows in one import request.
pub const MAX_IMPORT_ROWS: usize = 5_000;

/// Routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::get(
            "/v1/registers",
            Role::Viewer,
            "List registers (status, owner_inn, group, tariff, silent_for, paid_until_before; paginated)",
            list,
        )
        .query::<read::ListQuery>(),
        Route::post("/v1/registers", "register.create", "Create one register", create)
            .body::<input::RegisterInput>()
            .answers(axum::http::StatusCode::CREATED),
        Route::post(
            "/v1/registers/import",
            "register.import",
            "Import up to 5,000 registers (all-or-nothing unless partial; dry_run)",
            import,
        )
        .body::<write::ImportRequest>(),
        Route::get(
            "/v1/registers/{rnm}",
            Role::Viewer,
            "One register with FN history, activity and document counts",
            show,
        ),
        Route::post(
            "/v1/registers/{rnm}/suspend",
            "register.suspend",
            "Suspend a register (its documents are refused)",
            suspend,
        )
        .optional_body::<status::StatusChange>(),
        Route::post("/v1/registers/{rnm}/resume", "register.resume", "Resume a suspended register", resume)
            .optional_body::<status::StatusChange>(),
        Route::post(
            "/v1/registers/{rnm}/replace-fn",
            "register.replace_fn",
            "Replace the FN (the old one is kept in the history)",
            replace_fn,
        )
        .body::<status::ReplaceFn>(),
        Route::post(
            "/v1/registers/{rnm}/time-zone",
            "register.set_time_zone",
            "Set the register's IANA time zone for reports (empty: the default)",
            set_time_zone,
        )
        .body::<status::TimeZoneChange>(),
    ]
}
