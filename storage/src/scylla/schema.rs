//! The versioned CQL schema and its migration.
//!
//! The schema lives in `config/schema/v<N>.cql` (reviewed as CQL, readable by operators)
//! and is embedded here with `include_str!`, so a binary always carries exactly the
//! schema it was built against. [`migrate`] applies every version not yet recorded in
//! `<keyspace>.schema_version`, in order; each statement is idempotent (`IF NOT EXISTS`),
//! so a migration interrupted half-way is simply run again. A version is recorded only
//! after all its statements succeeded, with a checksum of its statements so that an edited
//! released file is refused instead of silently diverging between clusters.
//!
//! Run it from one place at a time (adminctl or one gateway at deploy time). Concurrent
//! runs are harmless on ScyllaDB ≥ 5.2, whose schema changes go through Raft, but there is
//! no reason to race.

use std::collections::BTreeMap;
use std::time::Duration;

use scylla::client::session::Session;
use scylla::statement::{Consistency, Statement};
use scylla::value::CqlTimestamp;

use super::config::{ConfigError, MigrationConfig};
use super::errors;
use crate::error::StoreError;
use crate::ids::Timestamp;

/// One embedded schema version.
#[derive(Debug, Clone, Copy)]
pub struct SchemaFile {
    /// Version number (1, 2, …), the `N` of `vN.cql`.
    pub version: u32,
    /// What it does.
    pub description: &'static str,
    /// The CQL template.
    pub cql: &'static str,
}

/// Every schema version this build knows, in order.
pub const SCHEMA_FILES: &[SchemaFile] = &[
    SchemaFile {
        version: 1,
        description: "initial schema: documents, time index, FNS outbox, registers, admin plane",
        cql: include_str!("../../../config/schema/v1.cql"),
    },
    SchemaFile {
        version: 2,
        description: "report aggregates: fn_reports (continuity, day/hour totals, shifts), gapped_fns",
        cql: include_str!("../../../config/schema/v2.cql"),
    },
];

/// The schema version this build needs (the newest embedded one).
pub fn required_version() -> u32 {
    SCHEMA_FILES.iter().map(|f| f.version).max().unwrap_or(0)
}

/// Why a schema file could not be turned into statements.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// A string, quoted name or comment is not closed.
    #[error("unterminated {what} starting at byte {at}")]
    Unterminated {
        /// What is open.
        what: &'static str,
        /// Byte offset.
        at: usize,
    },
    /// A `${name}` placeholder nobody substitutes.
    #[error("unknown placeholder ${{{0}}}")]
    UnknownPlaceholder(String),
    /// The substituted values are invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl From<SchemaError> for StoreError {
    fn from(e: SchemaError) -> Self {
        StoreError::Invalid(format!("schema: {e}"))
    }
}

/// Splits CQL text into statements at top-level `;`, dropping `--`, `//` and `/* */`
/// comments and respecting `'strings'` (with `''` escapes), `"quoted names"` and
/// `$$…$$` literals. Statements are trimmed; empty ones are dropped; a final statement
/// without `;` is kept.
pub fn split_statements(cql: &str) -> Result<Vec<String>, SchemaError> {
    let b = cql.as_bytes();
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut i = 0;
    // Copies bytes [from, to) verbatim (always on UTF-8 boundaries: the delimiters are
    // ASCII).
    let push = |cur: &mut String, from: usize, to: usize| cur.push_str(&cql[from..to]);
    while i < b.len() {
        match b[i] {
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = skip_line(b, i);
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                i = skip_line(b, i);
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = find(b, i + 2, b"*/").ok_or(SchemaError::Unterminated { what: "comment", at: i })?;
                cur.push(' ');
                i = end + 2;
            }
            q @ (b'\'' | b'"') => {
                let start = i;
                i += 1;
                loop {
                    match b.get(i) {
                        None => {
                            return Err(SchemaError::Unterminated {
                                what: if q == b'\'' { "string" } else { "quoted name" },
                                at: start,
                            });
                        }
                        Some(&c) if c == q => {
                            if b.get(i + 1) == Some(&q) {
                                i += 2; // doubled quote = escaped quote
                            } else {
                                i += 1;
                                break;
                            }
                        }
                        Some(_) => i += 1,
                    }
                }
                push(&mut cur, start, i);
            }
            b'$' if b.get(i + 1) == Some(&b'$') => {
                let end = find(b, i + 2, b"$$").ok_or(SchemaError::Unterminated { what: "$$ literal", at: i })?;
                push(&mut cur, i, end + 2);
                i = end + 2;
            }
            b';' => {
                let s = cur.trim();
                if !s.is_empty() {
                    out.push(s.to_owned());
                }
                cur.clear();
                i += 1;
            }
            _ => {
                let start = i;
                // advance to the next interesting byte
                i += 1;
                while i < b.len() && !matches!(b[i], b'-' | b'/' | b'\'' | b'"' | b'$' | b';') {
                    i += 1;
                }
                push(&mut cur, start, i);
            }
        }
    }
    let s = cur.trim();
    if !s.is_empty() {
        out.push(s.to_owned());
    }
    Ok(out)
}

fn skip_line(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i] != b'\n' {
        i += 1;
    }
    i
}

fn find(b: &[u8], from: usize, pat: &[u8]) -> Option<usize> {
    b.get(from..)?.windows(pat.len()).position(|w| w == pat).map(|p| p + from)
}

/// Replaces `${name}` placeholders; any other `${…}` is an error.
pub fn substitute(stmt: &str, vars: &BTreeMap<&str, String>) -> Result<String, SchemaError> {
    let mut out = String::with_capacity(stmt.len() + 64);
    let mut rest = stmt;
    while let Some(p) = rest.find("${") {
        out.push_str(&rest[..p]);
        let after = &rest[p + 2..];
        let end = after.find('}').ok_or_else(|| SchemaError::UnknownPlaceholder(after.chars().take(20).collect()))?;
        let name = &after[..end];
        let value = vars.get(name).ok_or_else(|| SchemaError::UnknownPlaceholder(name.to_owned()))?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// FNV-1a (64 bit) of the statements of a version, before substitution: the checksum
/// identifies the schema text, not the keyspace it was applied to, and ignores comments
/// and layout outside statements.
pub fn checksum(statements: &[String]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for s in statements {
        for &byte in s.as_bytes().iter().chain(b"\n") {
            h ^= u64::from(byte);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// The statements of one version, ready to run against a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedVersion {
    /// Version.
    pub version: u32,
    /// Description.
    pub description: &'static str,
    /// Checksum of the template statements.
    pub checksum: String,
    /// Substituted statements, in order.
    pub statements: Vec<String>,
}

/// Renders every embedded version for `cfg` (what [`migrate`] would run; adminctl can
/// print it for a dry run or for a DBA to apply by hand).
pub fn render(cfg: &MigrationConfig) -> Result<Vec<RenderedVersion>, SchemaError> {
    cfg.validate()?;
    let vars = BTreeMap::from([
        ("keyspace", cfg.keyspace.clone()),
        ("replication", cfg.replication_cql()),
        ("keyspace_options", cfg.keyspace_options_cql().to_owned()),
    ]);
    SCHEMA_FILES
        .iter()
        .map(|f| {
            let template = split_statements(f.cql)?;
            let statements = template.iter().map(|s| substitute(s, &vars)).collect::<Result<Vec<_>, _>>()?;
            Ok(RenderedVersion {
                version: f.version,
                description: f.description,
                checksum: checksum(&template),
                statements,
            })
        })
        .collect()
}

/// What a migration did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Keyspace.
    pub keyspace: String,
    /// Versions applied by this run.
    pub applied: Vec<u32>,
    /// Versions that were already applied.
    pub already_applied: Vec<u32>,
    /// Versions recorded in the keyspace that this build does not know (a newer build
    /// migrated it); the store still runs if its own required version is present.
    pub unknown: Vec<u32>,
}

/// Timeout of one DDL statement (schema agreement included).
const DDL_TIMEOUT: Duration = Duration::from_secs(120);

/// Applies the schema versions not yet applied to `cfg.keyspace`, idempotently. On Apache
/// Cassandra the ScyllaDB-only keyspace option (tablets) is left out.
///
/// Needs a session with rights to create keyspaces and tables. It does not need to be
/// bound to the keyspace (statements are fully qualified). Fails with
/// `StoreError::Conflict` if a version was applied from a different text.
pub async fn migrate(session: &Session, cfg: &MigrationConfig) -> Result<MigrationReport, StoreError> {
    // `tablets` is a ScyllaDB keyspace option; Apache Cassandra refuses it
    let scylla = is_scylla(session).await?;
    let cfg = &MigrationConfig { disable_tablets: cfg.disable_tablets && scylla, ..cfg.clone() };
    let rendered = render(cfg)?;
    let recorded = applied_versions(session, &cfg.keyspace).await?;
    let mut report = MigrationReport {
        keyspace: cfg.keyspace.clone(),
        applied: Vec::new(),
        already_applied: Vec::new(),
        unknown: recorded.keys().copied().filter(|v| !SCHEMA_FILES.iter().any(|f| f.version == *v)).collect(),
    };
    for v in &rendered {
        if let Some(sum) = recorded.get(&v.version) {
            if *sum != v.checksum {
                return Err(StoreError::Conflict(format!(
                    "schema version {} of keyspace {} was applied from a different text \
                     (checksum {sum}, this build has {}): released schema files must not \
                     be edited; add a new version instead",
                    v.version, cfg.keyspace, v.checksum
                )));
            }
            report.already_applied.push(v.version);
            continue;
        }
        tracing::info!(
            keyspace = %cfg.keyspace,
            version = v.version,
            statements = v.statements.len(),
            "applying schema version"
        );
        for stmt in &v.statements {
            let mut s = Statement::new(stmt.as_str());
            s.set_request_timeout(Some(DDL_TIMEOUT));
            session.query_unpaged(s, ()).await.map_err(|e| errors::from_execution(&e))?;
        }
        let mut s = Statement::new(format!(
            "INSERT INTO {}.schema_version (shard, version, applied_at, checksum, description) \
             VALUES (0, ?, ?, ?, ?)",
            cfg.keyspace
        ));
        s.set_consistency(Consistency::LocalQuorum);
        s.set_is_idempotent(true);
        let version = i32::try_from(v.version)
            .map_err(|_| StoreError::Invalid(format!("schema version {} too large", v.version)))?;
        session
            .query_unpaged(s, (version, CqlTimestamp(Timestamp::now().millis()), v.checksum.as_str(), v.description))
            .await
            .map_err(|e| errors::from_execution(&e))?;
        report.applied.push(v.version);
    }
    Ok(report)
}

/// Whether the cluster is ScyllaDB (it has `system.scylla_local`) rather than Apache
/// Cassandra; decides keyspace options only Scylla knows (tablets).
pub async fn is_scylla(session: &Session) -> Result<bool, StoreError> {
    let mut s = Statement::new(
        "SELECT table_name FROM system_schema.tables WHERE keyspace_name = 'system' AND table_name = 'scylla_local'",
    );
    s.set_consistency(Consistency::One);
    let rows = session
        .query_unpaged(s, ())
        .await
        .map_err(|e| errors::from_execution(&e))?
        .into_rows_result()
        .map_err(|e| errors::from_into_rows(&e))?;
    Ok(rows.rows_num() > 0)
}

/// The versions recorded in a keyspace, with their checksums (empty if the keyspace or
/// its `schema_version` table does not exist yet).
pub async fn applied_versions(session: &Session, keyspace: &str) -> Result<BTreeMap<u32, String>, StoreError> {
    super::config::validate_keyspace_name(keyspace)?;
    let mut s = Statement::new(
        "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ? AND table_name = 'schema_version'",
    );
    s.set_consistency(Consistency::LocalQuorum);
    let exists = session
        .query_unpaged(s, (keyspace,))
        .await
        .map_err(|e| errors::from_execution(&e))?
        .into_rows_result()
        .map_err(|e| errors::from_into_rows(&e))?
        .rows_num()
        > 0;
    if !exists {
        return Ok(BTreeMap::new());
    }
    let mut s = Statement::new(format!("SELECT version, checksum FROM {keyspace}.schema_version WHERE shard = 0"));
    s.set_consistency(Consistency::LocalQuorum);
    let rows = session
        .query_unpaged(s, ())
        .await
        .map_err(|e| errors::from_execution(&e))?
        .into_rows_result()
        .map_err(|e| errors::from_into_rows(&e))?;
    let mut out = BTreeMap::new();
    for row in rows.rows::<(i32, Option<String>)>().map_err(|e| errors::from_rows(&e))? {
        let (v, sum) = row.map_err(|e| errors::from_deser(&e))?;
        let v = u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative schema version {v}")))?;
        out.insert(v, sum.unwrap_or_default());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitter_handles_comments_strings_and_semicolons() {
        let cql = "-- header; with a semicolon\n\
                   CREATE TABLE a (x int PRIMARY KEY) WITH comment = 'a;b''c'; // trailing\n\
                   /* block ; comment */ INSERT INTO \"we;ird\" (x) VALUES (1);\n\
                   SELECT $$ $; $$ FROM t;;\n\
                   SELECT 1 -- no terminator";
        let s = split_statements(cql).expect("split");
        assert_eq!(
            s,
            vec![
                "CREATE TABLE a (x int PRIMARY KEY) WITH comment = 'a;b''c'".to_owned(),
                "INSERT INTO \"we;ird\" (x) VALUES (1)".to_owned(),
                "SELECT $$ $; $$ FROM t".to_owned(),
                "SELECT 1".to_owned(),
            ]
        );
        // a minus sign or a slash inside an expression is not a comment
        assert_eq!(
            split_statements("SELECT a-1, b/2 FROM t;").expect("split"),
            vec!["SELECT a-1, b/2 FROM t".to_owned()]
        );
    }

    #[test]
    fn splitter_refuses_unterminated_text() {
        assert!(matches!(split_statements("SELECT 'abc;"), Err(SchemaError::Unterminated { what: "string", .. })));
        assert!(matches!(
            split_statements("SELECT 1; /* open"),
            Err(SchemaError::Unterminated { what: "comment", .. })
        ));
        assert!(matches!(split_statements("SELECT \"x"), Err(SchemaError::Unterminated { what: "quoted name", .. })));
    }

    #[test]
    fn substitution_is_strict() {
        let vars = BTreeMap::from([("keyspace", "ofd".to_owned())]);
        assert_eq!(substitute("CREATE TABLE ${keyspace}.t", &vars).expect("ok"), "CREATE TABLE ofd.t");
        assert_eq!(substitute("x ${other} y", &vars), Err(SchemaError::UnknownPlaceholder("other".into())));
        assert!(substitute("x ${keyspace", &vars).is_err());
    }

    fn v1() -> RenderedVersion {
        let cfg = MigrationConfig::single_dc("ofd_test", "dc1", 3);
        render(&cfg).expect("render").into_iter().find(|v| v.version == 1).expect("v1")
    }

    #[test]
    fn v1_renders_into_qualified_idempotent_statements() {
        let v = v1();
        assert_eq!(v.version, 1);
        assert!(v.statements.len() >= 20, "{}", v.statements.len());
        let first = &v.statements[0];
        assert!(first.starts_with("CREATE KEYSPACE IF NOT EXISTS ofd_test"), "{first}");
        assert!(first.contains("{'class': 'NetworkTopologyStrategy', 'dc1': 3}"), "{first}");
        assert!(first.contains("AND tablets = {'enabled': false}"), "{first}");
        for s in &v.statements {
            assert!(!s.contains("${"), "unsubstituted: {s}");
            assert!(s.contains("IF NOT EXISTS"), "not idempotent: {s}");
            if s.starts_with("CREATE TABLE") {
                assert!(s.starts_with("CREATE TABLE IF NOT EXISTS ofd_test."), "not qualified: {s}");
            }
            // no counters anywhere (not idempotent under retry)
            assert!(!s.to_lowercase().contains(" counter"), "counter: {s}");
        }
        // every table the store uses is created by some version, each version idempotent
        let cfg = MigrationConfig::single_dc("ofd_test", "dc1", 3);
        let all: Vec<String> = render(&cfg).expect("render").into_iter().flat_map(|v| v.statements).collect();
        for s in &all {
            assert!(s.contains("IF NOT EXISTS"), "not idempotent: {s}");
        }
        for t in super::super::statements::TABLES {
            assert!(
                all.iter().any(|s| s.starts_with(&format!("CREATE TABLE IF NOT EXISTS ofd_test.{t} ("))),
                "missing table {t}"
            );
        }
        assert_eq!(required_version(), 2);
    }

    /// Parses `default_time_to_live = N` and the TWCS window of a CREATE TABLE.
    fn table_options(stmt: &str) -> (Option<u64>, Option<(String, u64)>) {
        let ttl = stmt.split("default_time_to_live = ").nth(1).map(|r| {
            r.chars().take_while(char::is_ascii_digit).collect::<String>().parse::<u64>().expect("ttl digits")
        });
        let twcs = stmt.contains("TimeWindowCompactionStrategy").then(|| {
            let unit = stmt
                .split("'compaction_window_unit': '")
                .nth(1)
                .expect("unit")
                .split('\'')
                .next()
                .expect("unit")
                .to_owned();
            let size = stmt
                .split("'compaction_window_size': '")
                .nth(1)
                .expect("size")
                .split('\'')
                .next()
                .expect("size")
                .parse::<u64>()
                .expect("size digits");
            (unit, size)
        });
        (ttl, twcs)
    }

    #[test]
    fn retention_and_compaction_rules_hold() {
        const FIVE_YEARS_365: u64 = 157_680_000;
        let v = v1();
        let mut twcs_tables = Vec::new();
        for s in v.statements.iter().filter(|s| s.starts_with("CREATE TABLE")) {
            let name = s
                .trim_start_matches("CREATE TABLE IF NOT EXISTS ofd_test.")
                .split([' ', '('])
                .next()
                .expect("name")
                .to_owned();
            let (ttl, twcs) = table_options(s);
            // fiscal data is kept at least five calendar years (leap days included)
            if ["documents", "documents_by_register", "deliveries", "audit"].contains(&name.as_str()) {
                let ttl = ttl.unwrap_or_else(|| panic!("{name} has no TTL"));
                assert!(ttl >= FIVE_YEARS_365, "{name}: TTL {ttl} < 5 years");
                assert!(ttl >= 1827 * 86_400, "{name}: TTL {ttl} < 1827 days");
            }
            if let Some((unit, size)) = twcs {
                // TWCS only with a table-level TTL, and within twcs_max_window_count (50)
                let ttl = ttl.unwrap_or_else(|| panic!("TWCS table {name} without default TTL"));
                let window = match unit.as_str() {
                    "DAYS" => size * 86_400,
                    "HOURS" => size * 3600,
                    "MINUTES" => size * 60,
                    other => panic!("{name}: unit {other}"),
                };
                assert!(ttl / window <= 50, "{name}: {} windows", ttl / window);
                twcs_tables.push(name);
            }
        }
        twcs_tables.sort();
        // exactly the write-once time series; updated tables never use TWCS
        assert_eq!(twcs_tables, ["audit", "documents", "documents_by_register"]);
    }

    #[test]
    fn checksum_ignores_comments_but_not_statements() {
        let a = split_statements("-- one\nCREATE TABLE t (x int PRIMARY KEY);").expect("a");
        let b = split_statements("-- two\n\nCREATE TABLE t (x int PRIMARY KEY);\n").expect("b");
        let c = split_statements("CREATE TABLE t (y int PRIMARY KEY);").expect("c");
        assert_eq!(checksum(&a), checksum(&b));
        assert_ne!(checksum(&a), checksum(&c));
        assert_eq!(checksum(&a).len(), 16);
    }

    #[test]
    fn rendering_refuses_unsafe_names() {
        let mut cfg = MigrationConfig::single_dc("ofd", "dc1", 3);
        cfg.keyspace = "ofd.documents; DROP".into();
        assert!(matches!(render(&cfg), Err(SchemaError::Config(_))));
    }
}
