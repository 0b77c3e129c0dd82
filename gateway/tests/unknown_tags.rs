//! Tags the dictionary does not know, through the running gateway (issue 16): by default
//! the document is acknowledged with code 0 and stored, and the tag is counted by its
//! number's bucket; with the tag's class configured `strict` the attempt is refused — no
//! answer, nothing stored, counted — and the same document is acknowledged as soon as the
//! policy is tolerant again, so the stored answer never depended on the setting.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::*;
use ffd::build::{Item, Receipt};
use ffd::tlv::{Fvln, TlvWriter};
use ffd::{AckView, ResponseCode};
use gateway::config::TagPolicy;

/// A receipt of `id` that also carries tag 2050 (marking range, unknown) and 9999 (other).
fn receipt_with_unknown_tags(id: &ffd::build::Identity, fd: u32) -> Bytes {
    let r = Receipt {
        operation: 1,
        items: vec![Item {
            name: "Товар".into(),
            price: 10_000,
            quantity: Fvln { scale: 0, mantissa: 1 },
            vat: 11,
            subject: 1,
            method: 4,
        }],
        cash: 0,
        shift: 1,
        number: fd,
        taxation: 1,
    };
    let plain = ffd::build::receipt(id, fd, 1_767_604_500, &r);
    let mut w = TlvWriter::new();
    w.begin(3).extend(&plain[4..]).raw(2050, b"x").raw(9_999, b"yz").end();
    ffd::build::message(id, fd, &w.finish())
}

async fn counts(gw: &TestGateway) -> (f64, f64, f64) {
    let text = metrics_text(gw).await;
    (
        metric_value(&text, "ofd_gateway_unknown_tags_total", &[("bucket", "2000-2099"), ("action", "accepted")]),
        metric_value(&text, "ofd_gateway_unknown_tags_total", &[("bucket", "2000-2099"), ("action", "refused")]),
        metric_value(&text, "ofd_gateway_documents_refused_total", &[("reason", "unknown_tag")]),
    )
}

#[tokio::test]
async fn unknown_tags_are_accepted_by_default_and_refused_per_attempt_when_strict() {
    let regs = registers(2, 7_160_001);
    // strict for the marking range only
    let gw = start_with(|c| c.ingest.unknown_marking_tags = TagPolicy::Strict).await;
    for (reg, _) in &regs {
        gw.onboard(reg.clone()).await;
    }
    let (_, id) = &regs[0];
    let msg = receipt_with_unknown_tags(id, 5);
    let before = counts(&gw).await;
    assert_eq!(tcp_exchange(gw.tcp(), &msg).await, None, "strict: no answer");
    let stored =
        gw.store().documents_by_fn(&id.fn_number, 0..=u32::MAX, storage::PageRequest::first(10)).await.unwrap();
    assert!(stored.items.is_empty(), "strict: nothing stored");
    let after = counts(&gw).await;
    assert_eq!(after.1 - before.1, 1.0, "counted as refused in its bucket");
    assert_eq!(after.2 - before.2, 1.0, "the attempt is counted as refused");
    gw.stop().await;

    // the default is tolerant: the same document is acknowledged with code 0 and stored
    let gw = start().await;
    for (reg, _) in &regs {
        gw.onboard(reg.clone()).await;
    }
    let before = counts(&gw).await;
    let reply = tcp_exchange(gw.tcp(), &msg).await.expect("tolerant: answered");
    let (_, ack) = AckView::parse_reply(reply).expect("an acknowledgment");
    assert_eq!(ack.code, Some(ResponseCode::Accepted));
    let stored =
        gw.store().documents_by_fn(&id.fn_number, 0..=u32::MAX, storage::PageRequest::first(10)).await.unwrap();
    assert_eq!(stored.items.len(), 1);
    assert_eq!(stored.items[0].response_code, 0);
    let after = counts(&gw).await;
    assert_eq!(after.0 - before.0, 1.0, "counted as accepted in its bucket");
    gw.stop().await;
}
