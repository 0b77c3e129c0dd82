//! A fully decoded document tree, for rendering (JSON, admin look-ups) and for building
//! documents in tests and the load generator. The ingest hot path does not build trees:
//! it uses [`crate::inspect`], which walks the bytes once without allocating.
//!
//! Values keep their bytes (`Bytes` slices of the container, no copies) where the type
//! is a string or a byte array; unknown tags are kept verbatim, never rejected.

use bytes::Bytes;

use crate::error::FlkError;
use crate::frame::Limits;
use crate::tags::{self, ValueType};
use crate::tlv::{Fvln, TLV_HEADER_LEN, TlvWriter, cp866_decode, decode_uint, read_tlv};

/// One requisite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Tag.
    pub tag: u16,
    /// Decoded value.
    pub value: Value,
}

/// A decoded value. The variant follows the dictionary type of the tag; unknown tags and
/// values that do not fit their type (in lenient decoding) are [`Value::Raw`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// One byte.
    Byte(u8),
    /// Integer with nominal width 2.
    U16(u16),
    /// Integer with nominal width 4.
    U32(u32),
    /// Variable-length integer.
    Vln(u64),
    /// Variable-length decimal.
    Fvln(Fvln),
    /// Unix time.
    Time(u32),
    /// CP866 string bytes (decode with [`Value::text`]).
    Str(Bytes),
    /// Raw byte array.
    Bytes(Bytes),
    /// Nested requisites.
    Stlv(Vec<Field>),
    /// An unknown tag or a value kept verbatim.
    Raw(Bytes),
}

impl Value {
    /// Integer view of integer-like values.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Byte(v) => Some(u64::from(*v)),
            Value::U16(v) => Some(u64::from(*v)),
            Value::U32(v) | Value::Time(v) => Some(u64::from(*v)),
            Value::Vln(v) => Some(*v),
            _ => None,
        }
    }

    /// Decoded text of a string value (trailing padding spaces removed).
    pub fn text(&self) -> Option<String> {
        match self {
            Value::Str(b) => Some(cp866_decode(b).trim_end_matches(' ').to_owned()),
            _ => None,
        }
    }

    /// Raw bytes of a byte-array, string or raw value.
    pub fn bytes(&self) -> Option<&Bytes> {
        match self {
            Value::Str(b) | Value::Bytes(b) | Value::Raw(b) => Some(b),
            _ => None,
        }
    }

    /// Children of an STLV.
    pub fn fields(&self) -> Option<&[Field]> {
        match self {
            Value::Stlv(f) => Some(f),
            _ => None,
        }
    }

    /// The value's bytes as they are encoded on the wire (without the TLV header).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = TlvWriter::new();
        self.encode_into(0, &mut w);
        let mut out = w.finish();
        out.drain(..TLV_HEADER_LEN);
        out
    }

    fn encode_into(&self, tag: u16, w: &mut TlvWriter) {
        match self {
            Value::Byte(v) => {
                w.byte(tag, *v);
            }
            Value::U16(v) => {
                w.u16(tag, *v);
            }
            Value::U32(v) | Value::Time(v) => {
                w.u32(tag, *v);
            }
            Value::Vln(v) => {
                w.vln(tag, *v);
            }
            Value::Fvln(v) => {
                w.fvln(tag, *v);
            }
            Value::Str(b) | Value::Bytes(b) | Value::Raw(b) => {
                w.raw(tag, b);
            }
            Value::Stlv(fields) => {
                w.begin(tag);
                for f in fields {
                    f.value.encode_into(f.tag, w);
                }
                w.end();
            }
        }
    }
}

/// A fiscal document: its form code and its top-level requisites in wire order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Form code (the outer TLV tag).
    pub doc_type: u16,
    /// Requisites.
    pub fields: Vec<Field>,
}

impl Document {
    /// Decodes the document TLV at the start of `data` (a container's data: document TLV,
    /// then trailer). Returns the document and the trailer bytes. Strict: any value that
    /// violates the dictionary is an error.
    pub fn decode(data: &Bytes, limits: &Limits) -> Result<(Document, Bytes), FlkError> {
        decode_with(data, limits, false)
    }

    /// Like [`Document::decode`], but values that violate the dictionary — a value too long
    /// for its tag, or an STLV whose content does not parse — are kept as [`Value::Raw`]
    /// instead of failing (for showing documents that got code 14). Only a document whose
    /// own top-level TLV structure is broken fails.
    pub fn decode_lenient(data: &Bytes, limits: &Limits) -> Result<(Document, Bytes), FlkError> {
        decode_with(data, limits, true)
    }

    /// Encodes the document TLV.
    ///
    /// # Panics
    /// If a value (or the document) would be longer than its u16 length field allows.
    /// Decoding normalises values (integers to their nominal width, empty bytes to one
    /// byte), so a tree decoded from a large body can encode larger than it came in: use
    /// [`Document::try_encode`] for trees decoded from input.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = TlvWriter::new();
        Value::Stlv(self.fields.clone()).encode_into(self.doc_type, &mut w);
        w.finish()
    }

    /// Encodes the document TLV, or `None` when a value would exceed 65 535 bytes.
    pub fn try_encode(&self) -> Option<Vec<u8>> {
        stlv_len(&self.fields)?;
        Some(self.encode())
    }

    /// The first requisite with `tag` at the top level.
    pub fn get(&self, tag: u16) -> Option<&Value> {
        self.fields.iter().find(|f| f.tag == tag).map(|f| &f.value)
    }

    /// Every requisite with `tag` at the top level.
    pub fn get_all(&self, tag: u16) -> impl Iterator<Item = &Value> {
        self.fields.iter().filter(move |f| f.tag == tag).map(|f| &f.value)
    }
}

/// Encoded length of the values of `fields` with their TLV headers; `None` if it, or any
/// nested value, exceeds the u16 length field.
fn stlv_len(fields: &[Field]) -> Option<usize> {
    let mut total = 0usize;
    for f in fields {
        let len = match &f.value {
            Value::Byte(_) => 1,
            Value::U16(_) => 2,
            Value::U32(_) | Value::Time(_) => 4,
            Value::Vln(v) => crate::tlv::encode_vln(*v).1,
            Value::Fvln(v) => 1 + crate::tlv::encode_vln(v.mantissa).1,
            Value::Str(b) | Value::Bytes(b) | Value::Raw(b) => b.len(),
            Value::Stlv(children) => stlv_len(children)?,
        };
        if len > usize::from(u16::MAX) {
            return None;
        }
        total += TLV_HEADER_LEN + len;
    }
    (total <= usize::from(u16::MAX)).then_some(total)
}

fn decode_with(data: &Bytes, limits: &Limits, lenient: bool) -> Result<(Document, Bytes), FlkError> {
    let (tlv, next) = read_tlv(data, 0).ok_or(FlkError::truncated(data, 0, 0))?;
    let value = data.slice(TLV_HEADER_LEN..next);
    let mut count = 0u32;
    let fields = decode_fields(&value, 1, tlv.tag, limits, &mut count, lenient)?;
    Ok((Document { doc_type: tlv.tag, fields }, data.slice(next..)))
}

fn decode_fields(
    buf: &Bytes,
    level: u8,
    within: u16,
    limits: &Limits,
    count: &mut u32,
    lenient: bool,
) -> Result<Vec<Field>, FlkError> {
    if level > limits.max_depth {
        return Err(FlkError::DepthExceeded { max: limits.max_depth, tag: within });
    }
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let (tlv, next) = read_tlv(buf, pos).ok_or_else(|| FlkError::truncated(buf, pos, 0))?;
        *count += 1;
        if *count > limits.max_requisites {
            return Err(FlkError::TooManyRequisites { max: limits.max_requisites });
        }
        let raw = buf.slice(pos + TLV_HEADER_LEN..next);
        let before = *count;
        let value = match decode_value(tlv.tag, &raw, level, limits, count, lenient) {
            Ok(v) => v,
            Err(FlkError::TooManyRequisites { max }) => return Err(FlkError::TooManyRequisites { max }),
            // the withdrawn meaning of a reassigned tag, or (lenient) anything kept verbatim
            Err(e) => {
                if !lenient && !tags::legacy(tlv.tag).is_some_and(|old| fits_legacy(old, &raw)) {
                    return Err(e);
                }
                *count = before;
                Value::Raw(raw)
            }
        };
        out.push(Field { tag: tlv.tag, value });
        pos = next;
    }
    Ok(out)
}

fn decode_value(
    tag: u16,
    raw: &Bytes,
    level: u8,
    limits: &Limits,
    count: &mut u32,
    lenient: bool,
) -> Result<Value, FlkError> {
    let Some(info) = tags::lookup(tag) else {
        return Ok(Value::Raw(raw.clone()));
    };
    check_value(tag, info, raw)?;
    let bad = || FlkError::BadValueLength { tag, len: raw.len() };
    Ok(match info.ty {
        ValueType::Byte => Value::Byte(raw.first().copied().unwrap_or(0)),
        ValueType::U16 => {
            let v = decode_uint(raw, 4).ok_or_else(bad)?;
            match u16::try_from(v) {
                Ok(v) => Value::U16(v),
                Err(_) => Value::U32(u32::try_from(v).map_err(|_| bad())?),
            }
        }
        ValueType::U32 => Value::U32(u32::try_from(decode_uint(raw, 4).ok_or_else(bad)?).map_err(|_| bad())?),
        ValueType::UnixTime => Value::Time(u32::try_from(decode_uint(raw, 4).ok_or_else(bad)?).map_err(|_| bad())?),
        ValueType::Vln => match decode_uint(raw, 8) {
            Some(v) => Value::Vln(v),
            // codes wider than 8 bytes (1120/1121/1123) are identifiers, not amounts
            None => Value::Bytes(raw.clone()),
        },
        ValueType::Fvln => Value::Fvln(Fvln::decode(raw).ok_or_else(bad)?),
        ValueType::Str => Value::Str(raw.clone()),
        ValueType::Bytes => Value::Bytes(raw.clone()),
        ValueType::Stlv => Value::Stlv(decode_fields(raw, level + 1, tag, limits, count, lenient)?),
    })
}

/// Whether `value` is a valid value of the withdrawn meaning `old` of a reassigned tag.
pub(crate) fn fits_legacy(old: &tags::Legacy, value: &[u8]) -> bool {
    let len = value.len();
    len <= usize::from(old.max_len)
        && match old.ty {
            ValueType::Byte => len <= 1,
            ValueType::Fvln => len >= 1,
            ValueType::U16 | ValueType::U32 | ValueType::UnixTime => len <= 4,
            ValueType::Stlv => crate::tlv::TlvIter::new(value).all(|r| r.is_ok()),
            _ => true,
        }
}

/// The per-value checks shared by the tree decoder and the hot-path inspector.
#[inline]
pub(crate) fn check_value(tag: u16, info: &tags::TagInfo, value: &[u8]) -> Result<(), FlkError> {
    let len = value.len();
    if len > usize::from(info.max_len) {
        return Err(FlkError::ValueTooLong { tag, len, max: usize::from(info.max_len) });
    }
    let ok = match info.ty {
        ValueType::Byte => len <= 1,
        ValueType::Fvln => (1..=9).contains(&len),
        ValueType::U16 | ValueType::U32 | ValueType::UnixTime => len <= 4,
        _ => true,
    };
    // the FN number is fixed-width; everything downstream compares it byte for byte
    let ok = ok && (tag != 1041 || len == 16);
    if ok { Ok(()) } else { Err(FlkError::BadValueLength { tag, len }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_nested() {
        let doc = Document {
            doc_type: 3,
            fields: vec![
                Field { tag: 1040, value: Value::U32(7) },
                Field {
                    tag: 1059,
                    value: Value::Stlv(vec![
                        Field { tag: 1030, value: Value::Str(Bytes::from_static(b"Milk")) },
                        Field { tag: 1023, value: Value::Fvln(Fvln { scale: 3, mantissa: 1500 }) },
                        Field { tag: 1079, value: Value::Vln(8990) },
                    ]),
                },
                Field { tag: 9999, value: Value::Raw(Bytes::from_static(&[1, 2, 3])) },
            ],
        };
        let bytes = Bytes::from(doc.encode());
        let (back, trailer) = Document::decode(&bytes, &Limits::default()).expect("decodes");
        assert_eq!(back, doc);
        assert!(trailer.is_empty());
    }

    #[test]
    fn decoded_trees_that_outgrow_the_length_field_do_not_encode() {
        // 8 100 empty u32 requisites and a 1 000-byte one kept raw: 33 404 bytes in,
        // 65 804 bytes of value out
        let mut w = TlvWriter::new();
        w.begin(21);
        for _ in 0..8_100 {
            w.raw(1038, &[]);
        }
        w.raw(1038, &[0; 1_000]);
        w.end();
        let lenient = Document::decode_lenient(&Bytes::from(w.finish()), &Limits::default());
        let (doc, _) = lenient.expect("decodes leniently");
        assert!(doc.try_encode().is_none());
        let small = Document { doc_type: 3, fields: doc.fields[..10].to_vec() };
        assert_eq!(small.try_encode().map(|e| e.len()), Some(4 + 10 * 8));
    }

    #[test]
    fn depth_limit_applies() {
        let mut w = TlvWriter::new();
        w.begin(3);
        for _ in 0..6 {
            w.begin(1059);
        }
        for _ in 0..6 {
            w.end();
        }
        w.end();
        let bytes = Bytes::from(w.finish());
        let limits = Limits::default();
        assert_eq!(
            Document::decode(&bytes, &limits).map(|_| ()),
            Err(FlkError::DepthExceeded { max: limits.max_depth, tag: 1059 })
        );
    }
}
