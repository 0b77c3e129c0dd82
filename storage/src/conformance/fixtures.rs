//! Fixtures shared by the behaviour groups: fixed times (around 2023-11-14) and ids, valid
//! identifiers, documents whose bytes are unique to (FN, FD), and checked helpers.

use std::future::Future;

use bytes::Bytes;
use ffd::FnNumber;
use ffd::build::{self, Identity};
use ffd::tlv::FfdVersion;
use uuid::Uuid;

use crate::error::StoreError;
use crate::ids::{Inn, Rnm, Timestamp};
use crate::model::{
    AlertCondition, AlertRule, AlertScope, AppendOutcome, DELIVERY_PARTITIONS, DeliveryStatus, DocumentKey,
    DocumentRecord, JobState, Register, ResendJob, ResendSelector, Severity,
};
use crate::store::{Durability, Page, PageRequest, Store};

/// 2023-11-14T22:13:20Z, the base of every time in the suite.
pub const T0: i64 = 1_700_000_000_000;

pub fn t(offset_ms: i64) -> Timestamp {
    Timestamp(T0 + offset_ms)
}

pub fn owner() -> Inn {
    Inn::parse("7702203276").expect("valid fixture INN")
}

pub fn other_owner() -> Inn {
    Inn::parse("7704358518").expect("valid fixture INN")
}

pub fn serial(n: u64) -> String {
    format!("{:012}", 100_000 + n)
}

pub fn rnm(n: u64) -> Rnm {
    Rnm::compose(n, &owner(), &serial(n))
}

pub fn fn_no(n: u64) -> FnNumber {
    FnNumber::parse_strict(&format!("{:016}", 9_999_078_900_000_000u64 + n)).expect("valid fixture FN")
}

pub fn register(n: u64, f: FnNumber) -> Register {
    Register {
        name: format!("Shop {n}"),
        address: format!("Moscow, street {n}"),
        fn_since: Some(t(0)),
        ..Register::new(rnm(n), serial(n), owner(), f, t(0))
    }
}

/// A document whose raw and ack bytes are unique to (FN, FD) and `variant`.
pub fn doc(f: FnNumber, fd: u32, r: &Rnm, received_at: Timestamp, variant: u8) -> DocumentRecord {
    let mut raw = vec![0xA5, variant];
    raw.extend_from_slice(f.as_bytes());
    raw.extend_from_slice(&fd.to_be_bytes());
    raw.extend(std::iter::repeat_n(variant ^ 0x5A, 200));
    let mut ack = vec![0x5A, variant, 7];
    ack.extend_from_slice(&fd.to_be_bytes());
    ack.extend_from_slice(&received_at.0.to_be_bytes());
    DocumentRecord {
        ffd_version: Some(4),
        doc_time: Some(Timestamp(received_at.0 - 1000)),
        total: Some(u64::from(fd) * 100),
        fiscal_sign: Some(fd.wrapping_mul(2_654_435_761)),
        ..DocumentRecord::accepted(f, fd, r.clone(), 3, received_at, Bytes::from(raw), Bytes::from(ack))
    }
}

pub fn key(f: FnNumber, fd: u32) -> DocumentKey {
    DocumentKey { fn_number: f, fd }
}

pub fn v7(ms: i64, seq: u32) -> Uuid {
    let ms = u64::try_from(ms).expect("positive fixture time");
    Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        ms / 1000,
        u32::try_from(ms % 1000).expect("millis fit") * 1_000_000 + seq,
    ))
}

pub async fn append_ok(s: &dyn Store, docs: Vec<DocumentRecord>) -> Vec<AppendOutcome> {
    let n = docs.len();
    let c = s.append_documents(docs, Durability::Durable).await.expect("durable append succeeds");
    assert_eq!(c.durability, Durability::Durable, "asked for Durable");
    assert_eq!(c.outcomes.len(), n, "one outcome per document");
    c.outcomes
}

/// Follows a paged listing to its end, checking page sizes; returns every item.
pub async fn collect_pages<T, F, Fut>(limit: u32, mut fetch: F) -> Vec<T>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = Result<Page<T>, StoreError>>,
{
    let mut out = Vec::new();
    let mut req = PageRequest::first(limit);
    for _ in 0..10_000 {
        let page = fetch(req.clone()).await.expect("page");
        assert!(page.items.len() <= limit as usize, "page of {} items exceeds limit {limit}", page.items.len());
        out.extend(page.items);
        match page.next {
            Some(c) => req.cursor = Some(c),
            None => return out,
        }
    }
    panic!("pagination did not end");
}

pub async fn all_due(s: &dyn Store, now: Timestamp) -> Vec<(u16, DocumentKey)> {
    let mut out = Vec::new();
    for p in 0..DELIVERY_PARTITIONS {
        for d in s.due_deliveries(p, now, 10_000).await.expect("due") {
            assert_eq!(d.partition, p, "delivery reported in its own partition");
            assert_eq!(d.status, DeliveryStatus::Pending);
            out.push((p, d.key));
        }
    }
    out
}

pub fn is_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Conflict(_)))
}

pub fn rule(name: &str) -> AlertRule {
    AlertRule {
        name: name.to_owned(),
        condition: AlertCondition::Silent { for_secs: 86_400 },
        scope: AlertScope::All,
        severity: Severity::Warning,
        enabled: true,
        webhook: Some("http://127.0.0.1:9/hook".into()),
        created_at: t(0),
        updated_at: t(0),
    }
}

pub fn job(i: i64, state: JobState) -> ResendJob {
    ResendJob {
        id: v7(T0 + i * 1000, 0),
        selector: ResendSelector {
            rnm: Some(rnm(1)),
            fn_number: None,
            owner_inn: None,
            from: t(0),
            to: t(1000),
            types: vec![1, 3],
        },
        state,
        created_by: "alice".into(),
        created_at: t(i * 1000),
        updated_at: t(i * 1000),
        finished_at: None,
        selected: 0,
        selection_complete: false,
        delivered: 0,
        failed: 0,
        cursor: None,
        error: None,
    }
}

/// A register identity for documents built by `ffd::build` (FFD 1.2).
pub fn fiscal_identity(f: FnNumber, r: &Rnm) -> Identity {
    Identity {
        fn_number: f,
        rnm: r.as_str().to_owned(),
        user_inn: "7702203276".into(),
        kkt_serial: "000000100001".into(),
        ofd_inn: "7704211201".into(),
        user_name: "Shop".into(),
        address: "Moscow".into(),
        place: "Shop 1".into(),
        cashier: "Cashier".into(),
        ffd: FfdVersion::V1_2,
    }
}

/// A stored record around a document TLV built by `ffd::build` (`time`: its 1012).
pub fn fiscal_record(id: &Identity, r: &Rnm, fd: u32, tlv: &[u8], time: u32, received_at: Timestamp) -> DocumentRecord {
    let msg = build::message(id, fd, tlv);
    let raw = msg.slice(ffd::session::SESSION_HEADER_LEN..);
    let mut ack = vec![0x5A, 1];
    ack.extend_from_slice(&fd.to_be_bytes());
    ack.extend_from_slice(&raw[raw.len() - 4..]);
    let doc_type = tlv.first().copied().unwrap_or(0);
    DocumentRecord {
        ffd_version: Some(4),
        doc_time: Some(Timestamp::from_unix_secs(i64::from(time))),
        ..DocumentRecord::accepted(id.fn_number, fd, r.clone(), doc_type, received_at, raw, Bytes::from(ack))
    }
}
