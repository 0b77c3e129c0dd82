//! TLV/STLV: tag u16 LE, length u16 LE, value. An STLV's value is a concatenation of
//! TLVs; repeated tags are meaningful (several items, several reason codes).
//!
//! Value encodings:
//! * byte; integers ("u32", "u16") little-endian — decoded from 1..N bytes because real
//!   registers send e.g. tag 1213 in 2 bytes;
//! * VLN — unsigned LE of variable length, leading zero bytes may be omitted (0 = empty);
//! * FVLN — byte 0 = digits after the decimal point, then a VLN mantissa;
//! * UnixTime — u32 LE seconds;
//! * strings — CP866, no terminator, fixed-width ones right-padded with spaces;
//! * byte arrays — raw.

use std::fmt;

use crate::error::FlkError;

/// Length of a TLV header.
pub const TLV_HEADER_LEN: usize = 4;

/// One TLV borrowed from its enclosing buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// Tag.
    pub tag: u16,
    /// Value bytes.
    pub value: &'a [u8],
    /// Offset of the TLV header within the buffer the iterator walks.
    pub offset: usize,
}

/// Iterates over the TLVs of one STLV value. A TLV whose header or value runs past the
/// end yields [`FlkError::Truncated`] and ends the iteration.
#[derive(Debug, Clone)]
pub struct TlvIter<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> TlvIter<'a> {
    /// Walks `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0, failed: false }
    }

    /// Bytes not yet consumed.
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Result<Tlv<'a>, FlkError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        match read_tlv(self.buf, self.pos) {
            Some((tlv, next)) => {
                self.pos = next;
                Some(Ok(tlv))
            }
            None => {
                self.failed = true;
                Some(Err(FlkError::truncated(self.buf, self.pos, 0)))
            }
        }
    }
}

/// Reads the TLV at `pos`; `None` if its header or value runs past the end of `buf`.
/// Returns the TLV and the position after it.
pub fn read_tlv(buf: &[u8], pos: usize) -> Option<(Tlv<'_>, usize)> {
    let head = buf.get(pos..pos.checked_add(TLV_HEADER_LEN)?)?;
    let tag = u16::from_le_bytes([head[0], head[1]]);
    let len = usize::from(u16::from_le_bytes([head[2], head[3]]));
    let start = pos + TLV_HEADER_LEN;
    let value = buf.get(start..start + len)?;
    Some((Tlv { tag, value, offset: pos }, start + len))
}

/// An unsigned little-endian integer of `value.len() <= max_bytes` bytes (empty = 0).
pub fn decode_uint(value: &[u8], max_bytes: usize) -> Option<u64> {
    if value.len() > max_bytes.min(8) {
        return None;
    }
    let mut buf = [0u8; 8];
    buf[..value.len()].copy_from_slice(value);
    Some(u64::from_le_bytes(buf))
}

/// The minimal little-endian encoding of `v` (0 encodes as no bytes), as a VLN.
pub fn encode_vln(v: u64) -> ([u8; 8], usize) {
    let bytes = v.to_le_bytes();
    let len = 8 - (v.leading_zeros() as usize / 8);
    (bytes, len)
}

/// A decimal with `scale` digits after the point: `mantissa / 10^scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fvln {
    /// Digits after the decimal point.
    pub scale: u8,
    /// Unscaled value.
    pub mantissa: u64,
}

impl Fvln {
    /// Decodes an FVLN value: a scale byte then up to 8 mantissa bytes.
    pub fn decode(value: &[u8]) -> Option<Self> {
        let (&scale, mantissa) = value.split_first()?;
        Some(Self { scale, mantissa: decode_uint(mantissa, 8)? })
    }

    /// Encodes with a minimal mantissa.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.scale);
        let (bytes, len) = encode_vln(self.mantissa);
        out.extend_from_slice(&bytes[..len]);
    }

    /// As a float (for JSON).
    pub fn to_f64(&self) -> f64 {
        self.mantissa as f64 / 10f64.powi(i32::from(self.scale))
    }
}

impl fmt::Display for Fvln {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scale == 0 {
            return write!(f, "{}", self.mantissa);
        }
        let digits = self.mantissa.to_string();
        let scale = usize::from(self.scale);
        if digits.len() > scale {
            let (int, frac) = digits.split_at(digits.len() - scale);
            write!(f, "{int}.{frac}")
        } else {
            write!(f, "0.{}{}", "0".repeat(scale - digits.len()), digits)
        }
    }
}

/// Decodes a CP866 string (every byte maps to a character, so this cannot fail).
pub fn cp866_decode(bytes: &[u8]) -> String {
    let (text, _had_errors) = encoding_rs::IBM866.decode_without_bom_handling(bytes);
    text.into_owned()
}

/// Encodes a string in CP866; `None` if a character has no CP866 form.
pub fn cp866_encode(text: &str) -> Option<Vec<u8>> {
    let (bytes, _, unmappable) = encoding_rs::IBM866.encode(text);
    if unmappable { None } else { Some(bytes.into_owned()) }
}

/// The fiscal sign as printed on a receipt: the big-endian u32 of bytes 2–5 of tag 1077
/// (whose first two bytes are `21 04` in every sample). A 4-byte value is read whole.
pub fn printed_fiscal_sign(value: &[u8]) -> Option<u32> {
    match value.len() {
        4 => Some(u32::from_be_bytes([value[0], value[1], value[2], value[3]])),
        n if n >= 6 => Some(u32::from_be_bytes([value[2], value[3], value[4], value[5]])),
        _ => None,
    }
}

/// FFD (fiscal document format) versions, as coded in tags 1189/1190/1209.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FfdVersion {
    /// FFD 1.0 (tag value 1).
    V1_0,
    /// FFD 1.05 (tag value 2).
    V1_05,
    /// FFD 1.1 (tag value 3).
    V1_1,
    /// FFD 1.2 (tag value 4).
    V1_2,
}

impl FfdVersion {
    /// From the value of tag 1209 (or 1189/1190). 0 ("1.0 beta") reads as 1.0.
    pub fn from_tag_value(v: u8) -> Option<Self> {
        match v {
            0 | 1 => Some(Self::V1_0),
            2 => Some(Self::V1_05),
            3 => Some(Self::V1_1),
            4 => Some(Self::V1_2),
            _ => None,
        }
    }

    /// The value of tag 1209 for this version.
    pub fn tag_value(self) -> u8 {
        match self {
            Self::V1_0 => 1,
            Self::V1_05 => 2,
            Self::V1_1 => 3,
            Self::V1_2 => 4,
        }
    }

    /// "1.05" and the like.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1_0 => "1.0",
            Self::V1_05 => "1.05",
            Self::V1_1 => "1.1",
            Self::V1_2 => "1.2",
        }
    }
}

impl fmt::Display for FfdVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Builds TLV/STLV byte strings. Nested STLVs are opened with [`TlvWriter::begin`] and
/// closed with [`TlvWriter::end`], which patches the length.
#[derive(Debug, Default, Clone)]
pub struct TlvWriter {
    buf: Vec<u8>,
    open: Vec<usize>,
}

impl TlvWriter {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a raw value.
    ///
    /// # Panics
    /// If the value is longer than 65 535 bytes (a caller bug, never network-driven).
    pub fn raw(&mut self, tag: u16, value: &[u8]) -> &mut Self {
        let len = u16::try_from(value.len()).expect("TLV value longer than 65535 bytes");
        self.buf.extend_from_slice(&tag.to_le_bytes());
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(value);
        self
    }

    /// A one-byte value.
    pub fn byte(&mut self, tag: u16, v: u8) -> &mut Self {
        self.raw(tag, &[v])
    }

    /// A u16 in its nominal 2 bytes.
    pub fn u16(&mut self, tag: u16, v: u16) -> &mut Self {
        self.raw(tag, &v.to_le_bytes())
    }

    /// A u32 in its nominal 4 bytes.
    pub fn u32(&mut self, tag: u16, v: u32) -> &mut Self {
        self.raw(tag, &v.to_le_bytes())
    }

    /// A VLN in minimal length.
    pub fn vln(&mut self, tag: u16, v: u64) -> &mut Self {
        let (bytes, len) = encode_vln(v);
        self.raw(tag, &bytes[..len])
    }

    /// An FVLN with a minimal mantissa.
    pub fn fvln(&mut self, tag: u16, v: Fvln) -> &mut Self {
        let mut tmp = Vec::with_capacity(9);
        v.encode(&mut tmp);
        self.raw(tag, &tmp)
    }

    /// A UnixTime.
    pub fn time(&mut self, tag: u16, unix: u32) -> &mut Self {
        self.u32(tag, unix)
    }

    /// A CP866 string; characters without a CP866 form become `?`.
    pub fn string(&mut self, tag: u16, text: &str) -> &mut Self {
        let bytes = cp866_encode(text).unwrap_or_else(|| {
            let cleaned: String =
                text.chars().map(|c| if cp866_encode(&c.to_string()).is_some() { c } else { '?' }).collect();
            cp866_encode(&cleaned).unwrap_or_default()
        });
        self.raw(tag, &bytes)
    }

    /// A string right-padded with spaces to `width` bytes (INNs to 12, RNM to 20).
    pub fn padded(&mut self, tag: u16, text: &str, width: usize) -> &mut Self {
        let mut bytes = cp866_encode(text).unwrap_or_default();
        bytes.resize(width.max(bytes.len()), b' ');
        self.raw(tag, &bytes)
    }

    /// Opens an STLV; close it with [`TlvWriter::end`].
    pub fn begin(&mut self, tag: u16) -> &mut Self {
        self.buf.extend_from_slice(&tag.to_le_bytes());
        self.open.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0]);
        self
    }

    /// Closes the innermost open STLV.
    ///
    /// # Panics
    /// If nothing is open or the STLV exceeds 65 535 bytes (caller bugs).
    pub fn end(&mut self) -> &mut Self {
        let at = self.open.pop().expect("end() without begin()");
        let len = u16::try_from(self.buf.len() - at - 2).expect("STLV longer than 65535 bytes");
        self.buf[at..at + 2].copy_from_slice(&len.to_le_bytes());
        self
    }

    /// Appends already-encoded TLV bytes.
    pub fn extend(&mut self, encoded: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(encoded);
        self
    }

    /// The bytes written so far.
    ///
    /// # Panics
    /// If an STLV is still open.
    pub fn finish(self) -> Vec<u8> {
        assert!(self.open.is_empty(), "unclosed STLV");
        self.buf
    }

    /// Bytes written so far (open STLVs included, unpatched).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Nothing written yet.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_encodings_from_reference_vectors() {
        assert_eq!(decode_uint(&[0x01, 0, 0, 0], 4), Some(1));
        assert_eq!(decode_uint(&[0xe9, 0x2d, 0x06], 3), Some(404_969));
        assert_eq!(decode_uint(&[0x31, 0x04, 0x00, 0x01, 0xf0, 0x4f], 6), Some(87_892_227_523_633));
        assert_eq!(decode_uint(&[1, 2, 3, 4, 5, 6, 7], 6), None);
        assert_eq!(decode_uint(&[], 6), Some(0));
        let f = Fvln::decode(&[0x02, 0x15, 0xcd, 0x5b, 0x07]).expect("fvln");
        assert_eq!(f.to_string(), "1234567.89");
        let f = Fvln::decode(&[0x02, 0xd7, 0x37, 0x02, 0, 0, 0, 0]).expect("padded fvln");
        assert_eq!(f.to_string(), "1453.67");
        let f = Fvln::decode(&[0x05, 0x56, 0x34, 0x12]).expect("fvln");
        assert_eq!(f.to_string(), "11.93046");
        assert_eq!(cp866_decode(&[0x92, 0xa5, 0xe1, 0xe2]), "Тест");
        assert_eq!(cp866_encode("Привет, мир!").as_deref(), Some(&hex_bytes("8fe0a8a2a5e22c20aca8e021")[..]));
        assert_eq!(cp866_encode("€"), None);
        assert_eq!(decode_uint(&[0x8a, 0x02, 0x9e, 0x55], 4), Some(1_436_418_698));
        assert_eq!(printed_fiscal_sign(&[0x21, 0x04, 0xaa, 0x10, 0x75, 0x41]), Some(2_853_205_313));
    }

    #[test]
    fn vln_minimal_lengths() {
        assert_eq!(encode_vln(0).1, 0);
        assert_eq!(encode_vln(0x12_3456).1, 3);
        assert_eq!(&encode_vln(0x1234_5678).0[..4], &[0x78, 0x56, 0x34, 0x12]);
    }

    #[test]
    fn writer_nests_and_matches_reference() {
        // 7{1068{1047{1015=42}}} from the reference unit tests
        let mut w = TlvWriter::new();
        w.begin(7).begin(1068).begin(1047).u32(1015, 42).end().end().end();
        assert_eq!(w.finish(), hex_bytes("070010002c040c0017040800f70304002a000000"));
        // repeated tags are plain repetition
        let mut w = TlvWriter::new();
        w.begin(11).u32(1205, 12).u32(1205, 9).end();
        assert_eq!(w.finish(), hex_bytes("0b001000b50404000c000000b504040009000000"));
    }

    #[test]
    fn iterator_reports_truncation() {
        let buf = [0x11, 0x04, 0x10, 0x00, b'9'];
        let mut it = TlvIter::new(&buf);
        assert!(matches!(it.next(), Some(Err(FlkError::Truncated { offset: 0, .. }))));
        assert_eq!(it.next(), None);
    }

    fn hex_bytes(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
    }
}
