//! Connection shedding past the limit, and TLS client-certificate authentication of
//! registers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn connections_past_the_limit_are_shed_and_counted() {
    let gw = start_with(|c| c.limits.max_connections = 5).await;
    gw.onboard(s1_register()).await;
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(tokio::net::TcpStream::connect(gw.tcp()).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // the sixth is accepted and closed at once, without reading anything
    let mut extra = tokio::net::TcpStream::connect(gw.tcp()).await.unwrap();
    let _ = extra.write_all(S1).await;
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), extra.read(&mut buf)).await.unwrap().unwrap_or(0);
    assert_eq!(n, 0, "shed connection gets no answer");
    let text = metrics_text(&gw).await;
    assert!(metric_value(&text, "ofd_gateway_connections_closed_total", &[("reason", "shed_connections")]) >= 1.0);
    // a slot frees up when a held connection goes away
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(tcp_exchange(gw.tcp(), S1).await.is_some());
    drop(held);
    gw.stop().await;
}

struct Pki {
    ca_pem: String,
    client_cert: rustls_pki_types::CertificateDer<'static>,
    client_key: rustls_pki_types::PrivateKeyDer<'static>,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let client_key = KeyPair::generate().unwrap();
    let client = CertificateParams::new(vec!["register-9999078900005488".into()])
        .unwrap()
        .signed_by(&client_key, &issuer)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        client_cert: client.der().clone(),
        client_key: rustls_pki_types::PrivateKeyDer::try_from(client_key.serialize_der()).unwrap(),
    }
}

#[tokio::test]
async fn required_client_certificates_are_enforced() {
    let pki = pki();
    let ca_dir = tempfile::tempdir().unwrap();
    let ca_path = ca_dir.path().join("registers-ca.pem");
    std::fs::write(&ca_path, &pki.ca_pem).unwrap();
    let gw = start_with(|c| {
        c.tls.client_ca = Some(ca_path.clone());
        c.tls.client_auth = gateway::config::ClientAuth::Required;
    })
    .await;
    gw.onboard(s1_register()).await;
    let cert = gw.running().dev_cert.clone().unwrap();
    let name = || rustls_pki_types::ServerName::try_from("localhost").unwrap();

    // without a client certificate: no session
    let anonymous = tokio_rustls::TlsConnector::from(tls_client_config(&cert, false));
    let tcp = tokio::net::TcpStream::connect(gw.tls()).await.unwrap();
    let refused = match anonymous.connect(name(), tcp).await {
        Err(_) => true,
        Ok(mut s) => {
            // TLS 1.3: the server's refusal may arrive after the client finished
            let _ = s.write_all(S1).await;
            tokio::time::timeout(Duration::from_secs(5), read_reply(&mut s)).await.unwrap().is_none()
        }
    };
    assert!(refused, "a register without a certificate is refused");

    // with a certificate from the registers' CA: acknowledged
    let mut roots = rustls::RootCertStore::empty();
    for c in <rustls_pki_types::CertificateDer as rustls_pki_types::pem::PemObject>::pem_file_iter(&cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(vec![pki.client_cert.clone()], pki.client_key.clone_key())
        .unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(gw.tls()).await.unwrap();
    let mut s = connector.connect(name(), tcp).await.expect("mutual TLS handshake");
    s.write_all(S1).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(10), read_reply(&mut s)).await.unwrap();
    assert!(reply.is_some(), "an authenticated register is acknowledged");
    let text = metrics_text(&gw).await;
    assert!(metric_value(&text, "ofd_gateway_handshakes_total", &[("transport", "tls"), ("result", "failed")]) >= 1.0);
    gw.stop().await;
}
