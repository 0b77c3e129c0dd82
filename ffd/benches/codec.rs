//! Codec micro-benchmarks (criterion). `cargo bench -p ffd --bench codec`.
//!
//! * `inspect/*` — the ingest hot path per document: `check_frame` + `Message::new` +
//!   session check code + `inspect` (container CRC, TLV walk, dictionary checks, summary)
//!   on builder-made receipts of 1, 3 and 6 lines (264–856 bytes), and on sample S1.
//!   Throughput is reported in bytes; documents/s = 1 / time per iteration.
//! * `ack/build_and_wrap` — an acknowledgment: `SoftwareSigner` (HMAC-SHA256), TLV,
//!   container CRC, session header via `wrap_reply`.
//! * `tree/*` — the full tree decoder and JSON rendering, for comparison with `inspect`.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ffd::ack::{AckFields, ResponseCode, build_ack_container, wrap_reply};
use ffd::document::Document;
use ffd::json::to_fns_json;
use ffd::testkit::{SAMPLE_S1, receipt_message};
use ffd::{FfdVersion, FnNumber, FrameStatus, Limits, Message, SoftwareSigner, check_frame, inspect};

/// One document through the hot path, as the gateway does it for a read buffer holding
/// one message. Returns the response code so nothing is optimised away.
fn frame_and_inspect(buf: &Bytes, limits: &Limits) -> u8 {
    match check_frame(buf, limits) {
        Ok(FrameStatus::Complete { header, len }) => {
            let msg = Message::new(header, buf.slice(..len));
            match inspect(&msg, limits) {
                Ok(insp) => insp.response_code().value(),
                Err(_) => 255,
            }
        }
        _ => 254,
    }
}

fn inputs() -> Vec<(String, Bytes)> {
    let mut v: Vec<(String, Bytes)> = [1usize, 3, 6]
        .into_iter()
        .map(|n| {
            let m = receipt_message(FfdVersion::V1_2, 42, n);
            (format!("receipt_{n}_items_{}B", m.len()), m)
        })
        .collect();
    v.push(("S1_466B".to_owned(), Bytes::from_static(SAMPLE_S1)));
    v
}

fn bench_inspect(c: &mut Criterion) {
    let limits = Limits::default();
    let mut g = c.benchmark_group("inspect");
    for (name, msg) in inputs() {
        // the benchmark measures acceptance, not a refusal path
        assert_eq!(frame_and_inspect(&msg, &limits), 0, "{name} must be accepted");
        g.throughput(Throughput::Bytes(msg.len() as u64));
        g.bench_function(name, |b| b.iter(|| frame_and_inspect(black_box(&msg), black_box(&limits))));
    }
    g.finish();
}

fn bench_ack(c: &mut Criterion) {
    let signer = SoftwareSigner::new(b"benchmark key");
    let msg = receipt_message(FfdVersion::V1_2, 42, 3);
    let parsed = Message::parse(msg, &Limits::default()).expect("frames");
    let fields = AckFields {
        fn_number: FnNumber::from_ascii(b"9999078902013267"),
        fd: 42,
        code: ResponseCode::Accepted,
        time: 1_726_400_816,
        ofd_inn: AckFields::pad_inn("7704211201"),
        service1: [0x10, 0x09],
    };
    let mut g = c.benchmark_group("ack");
    g.throughput(Throughput::Elements(1));
    g.bench_function("build_and_wrap", |b| {
        b.iter(|| {
            let container = build_ack_container(black_box(&fields), &signer);
            wrap_reply(black_box(parsed.header()), &container)
        })
    });
    g.finish();
}

fn bench_tree(c: &mut Criterion) {
    let limits = Limits::default();
    let mut g = c.benchmark_group("tree");
    for (name, msg) in inputs() {
        let data = msg.slice(62..);
        g.throughput(Throughput::Bytes(msg.len() as u64));
        g.bench_function(format!("decode_{name}"), |b| {
            b.iter(|| Document::decode(black_box(&data), &limits).map(|(d, _)| d.fields.len()))
        });
        g.bench_function(format!("decode_json_{name}"), |b| {
            b.iter(|| Document::decode(black_box(&data), &limits).map(|(d, _)| to_fns_json(&d).to_string().len()))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_inspect, bench_ack, bench_tree);
criterion_main!(benches);
