//! Sample S1 from an onboarded FN over each transport: acknowledged with code 0 in the
//! real operator layout; a retransmission gets identical bytes; several messages on one
//! connection; probes; pings.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use ffd::{AckView, ResponseCode};
use tokio::io::AsyncWriteExt;

fn assert_ack_for_s1(reply: &Bytes) {
    let (header, ack) = AckView::parse_reply(reply.clone()).expect("a well-formed operator acknowledgment");
    assert_eq!(&header.fn_number, b"9999078900005488", "session header echoes the FN");
    assert_eq!(header.p_version, [0x00, 0x01], "session header echoes the P-version");
    assert_eq!(ack.fn_number.to_string(), "9999078900005488");
    assert_eq!(ack.fd, 1);
    assert_eq!(ack.doc_fd, Some(1));
    assert_eq!(ack.code, Some(ResponseCode::Accepted));
    assert_eq!(ack.ofd_inn.as_deref(), Some("7700000009"));
    // the real operator layout: type 5A, form 7, 8-byte 1078 "88 06 .. 00 03", trailer 82 06
    let c = &reply[30..];
    assert_eq!(c[4], 0x5A);
    assert_eq!(c[5], 7);
    let sign = ack.operator_sign.expect("1078 present");
    assert_eq!((sign.len(), sign[0], sign[1], sign[6], sign[7]), (8, 0x88, 0x06, 0x00, 0x03));
    assert_eq!((ack.trailer.len(), ack.trailer[0], ack.trailer[1]), (10, 0x82, 0x06));
    assert_eq!(c.len(), 119, "same size as the captured operator acknowledgments");
}

#[tokio::test]
async fn tcp_s1_acknowledged_and_retransmission_identical() {
    let gw = start().await;
    gw.onboard(s1_register()).await;
    let first = tcp_exchange(gw.tcp(), S1).await.expect("acknowledged");
    assert_ack_for_s1(&first);
    let again = tcp_exchange(gw.tcp(), S1).await.expect("acknowledged again");
    assert_eq!(first, again, "a retransmission gets the byte-identical acknowledgment");
    let stored = gw
        .store()
        .documents_by_fn(
            &ffd::FnNumber::parse_strict("9999078900005488").unwrap(),
            0..=u32::MAX,
            storage::PageRequest::first(10),
        )
        .await
        .unwrap();
    assert_eq!(stored.items.len(), 1, "one stored copy");
    assert_eq!(&stored.items[0].raw[..], &S1[30..]);
    gw.stop().await;
}

#[tokio::test]
async fn several_messages_on_one_connection_and_pings() {
    let gw = start().await;
    gw.onboard(s1_register()).await;
    let mut s = tokio::net::TcpStream::connect(gw.tcp()).await.unwrap();
    for _ in 0..3 {
        s.write_all(S1).await.unwrap();
        let r = read_reply(&mut s).await.expect("reply");
        assert_ack_for_s1(&r);
    }
    // a header-only ping on the same connection, answered with the header, flags cleared
    let mut ping = S1[..30].to_vec();
    ping[24] = 0;
    ping[25] = 0;
    ping[26] = 0x10;
    s.write_all(&ping).await.unwrap();
    let mut back = [0u8; 30];
    tokio::io::AsyncReadExt::read_exact(&mut s, &mut back).await.unwrap();
    assert_eq!(&back[..24], &ping[..24]);
    assert_eq!(&back[26..], &[0, 0, 0, 0]);
    drop(s);
    gw.stop().await;
}

#[tokio::test]
async fn probe_connections_are_fine() {
    let gw = start().await;
    for _ in 0..5 {
        let s = tokio::net::TcpStream::connect(gw.tcp()).await.unwrap();
        drop(s);
    }
    gw.onboard(s1_register()).await;
    assert!(tcp_exchange(gw.tcp(), S1).await.is_some(), "still serving after probes");
    gw.stop().await;
}

#[tokio::test]
async fn tls_s1_acknowledged() {
    let gw = start().await;
    gw.onboard(s1_register()).await;
    let cert = gw.running().dev_cert.clone().expect("dev cert");
    let connector = tokio_rustls::TlsConnector::from(tls_client_config(&cert, false));
    let mut replies = Vec::new();
    for _ in 0..2 {
        let tcp = tokio::net::TcpStream::connect(gw.tls()).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, tcp).await.expect("handshake");
        tls.write_all(S1).await.unwrap();
        let r = tokio::time::timeout(Duration::from_secs(10), read_reply(&mut tls)).await.unwrap().expect("reply");
        assert_ack_for_s1(&r);
        replies.push(r);
    }
    assert_eq!(replies[0], replies[1]);
    gw.stop().await;
}

#[tokio::test]
async fn quic_s1_acknowledged_on_several_streams() {
    let gw = start().await;
    gw.onboard(s1_register()).await;
    let cert = gw.running().dev_cert.clone().expect("dev cert");
    let client_cfg =
        quinn::crypto::rustls::QuicClientConfig::try_from((*tls_client_config(&cert, true)).clone()).unwrap();
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(quinn::ClientConfig::new(std::sync::Arc::new(client_cfg)));
    let conn = endpoint.connect(gw.quic(), "localhost").unwrap().await.expect("QUIC handshake");
    let mut replies = Vec::new();
    for _ in 0..3 {
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        send.write_all(S1).await.unwrap();
        send.finish().unwrap();
        let r = tokio::time::timeout(Duration::from_secs(10), read_reply(&mut recv)).await.unwrap().expect("reply");
        assert_ack_for_s1(&r);
        replies.push(r);
    }
    assert!(replies.windows(2).all(|w| w[0] == w[1]));
    conn.close(0u32.into(), b"done");
    endpoint.wait_idle().await;
    gw.stop().await;
}

#[tokio::test]
async fn unknown_fn_gets_no_acknowledgment_and_is_recorded() {
    let gw = start().await;
    assert!(tcp_exchange(gw.tcp(), S1).await.is_none(), "no acknowledgment for an unknown FN");
    // the attempt reaches the onboarding backlog within the flush period
    let mut found = false;
    for _ in 0..50 {
        let p = gw.store().list_unknown_fns(storage::PageRequest::first(10)).await.unwrap();
        if p.items.iter().any(|u| u.fn_number.to_string() == "9999078900005488") {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(found, "unknown FN recorded in the onboarding backlog");
    gw.stop().await;
}
