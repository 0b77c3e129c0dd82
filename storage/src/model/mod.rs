//! The domain model. Every type is serde-serialisable so that the admin API, `adminctl`
//! and the backends share one vocabulary; nothing here depends on a backend. One file per
//! noun; everything is re-exported here, so paths are `storage::model::X`.

mod alert;
mod audit;
mod continuity;
mod document;
mod job;
mod register;
mod report;
mod tariff;

pub use alert::*;
pub use audit::*;
pub use continuity::*;
pub use document::*;
pub use job::*;
pub use register::*;
pub use report::*;
pub use tariff::*;

/// Hex (de)serialisation of byte fields.
pub mod hex_bytes {
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises as a lowercase hex string.
    pub fn serialize<S: Serializer>(b: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }

    /// Parses a hex string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        hex::decode(s.as_bytes()).map(Bytes::from).map_err(serde::de::Error::custom)
    }
}
