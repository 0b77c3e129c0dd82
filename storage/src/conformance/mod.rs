//! The conformance suite: behavioural tests every [`Store`] backend must pass, one file per
//! behaviour group; here the [`Harness`], the one list of tests and [`conformance_suite!`].
//! May import the model, ids, errors and the `Store` trait — never a backend.
//!
//! A backend's test file provides a [`Harness`] and either instantiates every test with
//! [`conformance_suite!`] or calls [`run_all`].
//!
//! The tests use only the [`Store`] trait, so they define the contract as much as
//! `store.rs` does. Each test asks for a fresh store; data are built with fixed times
//! (around 2023-11-14) and ids, so failures are reproducible. Tests that need the
//! passage of real time (lease expiry) sleep briefly; everything else is deterministic.

mod alerts;
mod appends;
mod audit;
mod documents;
pub mod fixtures;
mod jobs;
mod leases;
mod outbox;
mod registers;
mod reopen;
mod reports;
mod tariffs;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;

use crate::store::Store;

// Every test is re-exported here: `conformance_suite!` calls `$crate::conformance::<name>`,
// and `registry!` below names them unqualified.
pub use alerts::{alert_notifications_due_and_list, alert_rules_and_states};
pub use appends::{
    append_buffered_reports_at_least_buffered, append_concurrent_same_key_stores_once,
    append_conflicting_duplicate_keeps_original, append_duplicates_inside_one_batch,
    append_identical_duplicate_returns_first_ack, append_out_of_order_and_old_retransmissions,
    append_stores_new_documents_durably,
};
pub use audit::audit_newest_first_with_filters;
pub use documents::{
    activity_folds_stored_documents_only, bad_cursor_is_invalid, documents_by_fn_ranges_and_pages,
    documents_by_register_time_range_and_pages,
};
pub use jobs::jobs_newest_first_with_state_filter;
pub use leases::leases_are_exclusive_renewable_and_expire;
pub use outbox::{outbox_backlog_stats, outbox_delivery_and_failure, outbox_queues_each_stored_document_once};
pub use registers::{
    registers_fn_clash_changes_nothing, registers_list_filters_and_pages, registers_put_get_and_fn_index,
    registers_updated_since, registers_version_conflict_changes_nothing, unknown_fns_aggregate_and_remove,
};
pub use reopen::data_survives_reopen;
pub use reports::{check_reports, reports_equal_a_recomputation, reports_hand_computed_shift_and_hole};
pub use tariffs::tariffs_create_get_list;

/// How the suite obtains stores of one backend.
#[async_trait]
pub trait Harness: Send + Sync {
    /// A store with no data in it (a fresh directory or keyspace).
    async fn fresh(&self) -> Arc<dyn Store>;
    /// Closes `store` and opens the same data again; `None` if the backend cannot.
    async fn reopen(&self, store: Arc<dyn Store>) -> Option<Arc<dyn Store>>;
}

/// Runs every test of the suite against `harness`, in sequence, panicking on the first
/// failure with the test's name.
pub async fn run_all(harness: &dyn Harness) {
    for (name, test) in tests() {
        eprintln!("conformance: {name}");
        test(harness).await;
    }
}

type TestFn = for<'a> fn(&'a dyn Harness) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

macro_rules! registry {
    ($($name:ident),* $(,)?) => {
        /// The tests, by name.
        pub fn tests() -> Vec<(&'static str, TestFn)> {
            vec![$(
                (stringify!($name), {
                    fn wrap<'a>(h: &'a dyn Harness) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
                        Box::pin($name(h))
                    }
                    wrap as TestFn
                }),
            )*]
        }
    };
}

// The one list of tests. `conformance_suite!` below repeats it (macro_rules cannot share
// a list across crates); its generated `conformance_suite_is_complete` test fails if the
// two lists ever differ.
registry!(
    append_stores_new_documents_durably,
    append_identical_duplicate_returns_first_ack,
    append_conflicting_duplicate_keeps_original,
    append_duplicates_inside_one_batch,
    append_concurrent_same_key_stores_once,
    append_buffered_reports_at_least_buffered,
    append_out_of_order_and_old_retransmissions,
    documents_by_fn_ranges_and_pages,
    documents_by_register_time_range_and_pages,
    bad_cursor_is_invalid,
    activity_folds_stored_documents_only,
    outbox_queues_each_stored_document_once,
    outbox_delivery_and_failure,
    outbox_backlog_stats,
    leases_are_exclusive_renewable_and_expire,
    registers_put_get_and_fn_index,
    registers_fn_clash_changes_nothing,
    registers_version_conflict_changes_nothing,
    registers_list_filters_and_pages,
    registers_updated_since,
    unknown_fns_aggregate_and_remove,
    tariffs_create_get_list,
    audit_newest_first_with_filters,
    alert_rules_and_states,
    alert_notifications_due_and_list,
    jobs_newest_first_with_state_filter,
    data_survives_reopen,
    reports_equal_a_recomputation,
    reports_hand_computed_shift_and_hole,
);

/// Instantiates every conformance test as its own `#[tokio::test]`, given an expression
/// that builds the harness (evaluated once per test).
#[macro_export]
macro_rules! conformance_suite {
    ($harness:expr) => {
        $crate::conformance_suite!(@each $harness;
            append_stores_new_documents_durably,
            append_identical_duplicate_returns_first_ack,
            append_conflicting_duplicate_keeps_original,
            append_duplicates_inside_one_batch,
            append_concurrent_same_key_stores_once,
            append_buffered_reports_at_least_buffered,
            append_out_of_order_and_old_retransmissions,
            documents_by_fn_ranges_and_pages,
            documents_by_register_time_range_and_pages,
            bad_cursor_is_invalid,
            activity_folds_stored_documents_only,
            outbox_queues_each_stored_document_once,
            outbox_delivery_and_failure,
            outbox_backlog_stats,
            leases_are_exclusive_renewable_and_expire,
            registers_put_get_and_fn_index,
            registers_fn_clash_changes_nothing,
            registers_version_conflict_changes_nothing,
            registers_list_filters_and_pages,
            registers_updated_since,
            unknown_fns_aggregate_and_remove,
            tariffs_create_get_list,
            audit_newest_first_with_filters,
            alert_rules_and_states,
            alert_notifications_due_and_list,
            jobs_newest_first_with_state_filter,
            data_survives_reopen,
            reports_equal_a_recomputation,
            reports_hand_computed_shift_and_hole,
        );
    };
    (@each $harness:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let harness = $harness;
                $crate::conformance::$name(&harness).await;
            }
        )*

        #[test]
        fn conformance_suite_is_complete() {
            let here: Vec<&str> = vec![$(stringify!($name)),*];
            let all: Vec<&str> = $crate::conformance::tests().into_iter().map(|(n, _)| n).collect();
            assert_eq!(here, all, "conformance_suite! and tests() list different tests");
        }
    };
}
