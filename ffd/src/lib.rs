//! # ffd — the FN ↔ OFD wire protocol
//!
//! Everything about the bytes a cash register (KKT) and its fiscal drive (FN) exchange with
//! a fiscal data operator (OFD), and nothing about sockets: the crate is pure functions over
//! [`bytes::Bytes`], shared by the gateway (decode, validate, acknowledge) and the load
//! generator (build documents, check acknowledgments).
//!
//! Layers, outermost first:
//! * [`session`] — the 30-byte session header; [`frame`] — framing by its body length,
//!   with limits checked before anything is allocated;
//! * [`container`] — the 32-byte container header and its check code ([`crc`]);
//! * [`tlv`] and [`document`] — TLV/STLV requisites, decoded with the [`tags`] dictionary;
//! * [`inspect`] — the allocation-free validation used on the ingest hot path;
//! * [`ack`] — the operator acknowledgment in the real operator layout, signed by an
//!   [`ack::AckSigner`];
//! * [`json`] — FNS JSON (written and read back); [`vat`] — VAT rates of tag 1199;
//!   [`build`] — document and message builders.
//!
//! Errors ([`FfdError`]) carry a stable code and say whether the right answer is a
//! response code or closing the connection ([`error::Disposition`]).

pub mod ack;
pub mod build;
pub mod code;
pub mod container;
pub mod crc;
pub mod document;
pub mod error;
pub mod figures;
pub mod fn_number;
pub mod frame;
pub mod inspect;
pub mod json;
pub mod session;
pub mod tags;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod tlv;
pub mod vat;

pub use ack::{AckFields, AckSigner, AckView, ResponseCode, SoftwareSigner};
pub use error::{Disposition, FfdError, FlkError};
pub use fn_number::FnNumber;
pub use frame::{FrameStatus, Limits, Message, check_frame};
pub use inspect::{Body, Inspection, Judgement, Summary, Telemetry, UnknownTags, inspect, judge};
pub use tlv::FfdVersion;
