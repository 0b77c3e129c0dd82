//! Raw bytes as a connection delivers them: framing (`check_frame`), the session check
//! code, `inspect`, and an acknowledgment built for every answered frame and parsed back
//! by the register side. Also feeds the bytes to the reply parser.
#![no_main]

use bytes::Bytes;
use ffd::ack::{AckFields, build_ack_container, ping_reply, wrap_reply};
use ffd::testkit::{Expect, replay};
use ffd::{AckView, FrameStatus, Limits, Message, ResponseCode, SoftwareSigner, check_frame, inspect};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let signer = SoftwareSigner::new(b"fuzz");
    let steps = replay(data, &limits);
    let mut pos = 0;
    for (i, step) in steps.iter().enumerate() {
        assert_eq!(step.range.start, pos, "steps must tile the stream");
        assert!(step.range.end <= data.len());
        pos = step.range.end;
        let frame = Bytes::copy_from_slice(&data[step.range.clone()]);
        match step.outcome {
            Expect::Respond { response_code, .. } => {
                let FrameStatus::Complete { header, len } =
                    check_frame(&frame, &limits).expect("an answered frame frames again")
                else {
                    panic!("an answered frame is complete");
                };
                assert_eq!(len, frame.len());
                let msg = Message::new(header, frame);
                let insp = inspect(&msg, &limits).expect("an answered frame inspects again");
                assert_eq!(insp.response_code().value(), response_code);
                assert!(matches!(response_code, 0 | 11 | 14));
                let fields = AckFields {
                    fn_number: insp.fn_number(),
                    fd: insp.fd(),
                    code: insp.response_code(),
                    time: 1_726_400_816,
                    ofd_inn: AckFields::pad_inn("7704211201"),
                    service1: insp.header().service1,
                };
                let reply = wrap_reply(msg.header(), &build_ack_container(&fields, &signer));
                let (h, view) = AckView::parse_reply(reply).expect("our own ack parses");
                assert_eq!(h.fn_number, msg.header().fn_number);
                assert_eq!((view.fn_number, view.fd), (insp.fn_number(), insp.fd()));
                assert_eq!(view.code, Some(ResponseCode::from_value(response_code)));
            }
            Expect::Ping => {
                let header = ffd::session::SessionHeader::parse(&frame).expect("a ping header parses");
                let reply = ping_reply(&header);
                assert_eq!(reply.len(), 30);
            }
            Expect::Close { .. } | Expect::CloseOnEof { .. } => {
                assert_eq!(i + 1, steps.len(), "nothing is read after a close");
            }
        }
    }
    let _ = AckView::parse_reply(Bytes::copy_from_slice(data));
    let _ = AckView::parse_container(Bytes::copy_from_slice(data));
});
