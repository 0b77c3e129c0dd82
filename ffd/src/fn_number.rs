//! The fiscal drive (FN) number: 16 ASCII characters on the wire (session header, tag 1041)
//! and 8 bytes of packed BCD in the container header.
//!
//! Real drives have 16 digits; test vectors also show shorter numbers right-padded with
//! spaces (`"9999078950      "`), which BCD encodes as nibble `F`. We keep the 16 bytes as
//! they came, after mapping NUL padding to spaces, so that header, container and document
//! can be compared exactly.

use std::fmt;

/// A 16-character FN number (digits, possibly right-padded with spaces).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FnNumber([u8; 16]);

impl FnNumber {
    /// Length of the ASCII form.
    pub const LEN: usize = 16;

    /// From the ASCII form found in the session header or tag 1041. NUL bytes are read as
    /// spaces (some firmware pads with NUL). Any other non-digit is kept verbatim; use
    /// [`FnNumber::is_valid`] to check that the number is digits followed by padding.
    pub fn from_ascii(raw: &[u8; 16]) -> Self {
        let mut out = *raw;
        for b in &mut out {
            if *b == 0 {
                *b = b' ';
            }
        }
        Self(out)
    }

    /// From the 8-byte packed BCD of the container header: two digits per byte, high nibble
    /// first; nibble `F` stands for a space (padding). Nibbles A–E are an error.
    pub fn from_bcd(bcd: &[u8; 8]) -> Result<Self, FnNumberError> {
        let mut out = [b' '; 16];
        for (i, byte) in bcd.iter().enumerate() {
            for (j, nibble) in [byte >> 4, byte & 0x0F].into_iter().enumerate() {
                out[i * 2 + j] = match nibble {
                    0..=9 => b'0' + nibble,
                    0x0F => b' ',
                    _ => return Err(FnNumberError::Bcd(*bcd)),
                };
            }
        }
        Ok(Self(out))
    }

    /// Packed BCD form (digits as nibbles, anything else as `F`).
    pub fn to_bcd(&self) -> [u8; 8] {
        let nib = |c: u8| if c.is_ascii_digit() { c - b'0' } else { 0x0F };
        let mut out = [0u8; 8];
        for (i, pair) in self.0.chunks_exact(2).enumerate() {
            out[i] = (nib(pair[0]) << 4) | nib(pair[1]);
        }
        out
    }

    /// Parses an FN number typed by a person: exactly 16 digits.
    pub fn parse_strict(s: &str) -> Result<Self, FnNumberError> {
        let bytes = s.as_bytes();
        if bytes.len() != 16 {
            return Err(FnNumberError::Length(bytes.len()));
        }
        if let Some(pos) = bytes.iter().position(|b| !b.is_ascii_digit()) {
            return Err(FnNumberError::NotDigit(pos));
        }
        let mut out = [0u8; 16];
        out.copy_from_slice(bytes);
        Ok(Self(out))
    }

    /// True when the number is one or more digits followed only by space padding.
    pub fn is_valid(&self) -> bool {
        let digits = self.0.iter().take_while(|b| b.is_ascii_digit()).count();
        digits > 0 && self.0[digits..].iter().all(|&b| b == b' ')
    }

    /// The 16 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The number without trailing padding (ASCII digits are valid UTF-8; any other byte
    /// is shown as `?`).
    pub fn trimmed(&self) -> std::borrow::Cow<'_, str> {
        let end = self.0.iter().rposition(|&b| b != b' ').map_or(0, |p| p + 1);
        String::from_utf8_lossy(&self.0[..end])
    }
}

impl fmt::Display for FnNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.trimmed())
    }
}

impl fmt::Debug for FnNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FnNumber({:?})", String::from_utf8_lossy(&self.0))
    }
}

impl std::str::FromStr for FnNumber {
    type Err = FnNumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_strict(s)
    }
}

/// Why an FN number was refused (typed by a person, or packed in a container header).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FnNumberError {
    /// Not 16 characters long.
    #[error("FN number must be exactly 16 digits, got {0} characters")]
    Length(usize),
    /// A character that is not a digit.
    #[error("FN number must be digits only (non-digit at position {0})")]
    NotDigit(usize),
    /// Packed BCD with a nibble A–E.
    #[error("FN number is not packed BCD: {0:02x?}")]
    Bcd([u8; 8]),
}

#[cfg(feature = "serde")]
impl serde::Serialize for FnNumber {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&String::from_utf8_lossy(&self.0))
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for FnNumber {
    /// Accepts 16 characters as stored (digits with space padding), or fewer digits, which
    /// are padded with spaces as test drives are.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        let bytes = s.as_bytes();
        if bytes.is_empty() || bytes.len() > 16 {
            return Err(serde::de::Error::custom("FN number must be 1 to 16 characters"));
        }
        let mut out = [b' '; 16];
        out[..bytes.len()].copy_from_slice(bytes);
        let fn_ = FnNumber::from_ascii(&out);
        if fn_.is_valid() { Ok(fn_) } else { Err(serde::de::Error::custom("FN number must be digits")) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcd_round_trip_with_padding() {
        let bcd = [0x99, 0x99, 0x07, 0x89, 0x12, 0x34, 0x56, 0x7F];
        let fn_ = FnNumber::from_bcd(&bcd).expect("valid bcd");
        assert_eq!(fn_.as_bytes(), b"999907891234567 ");
        assert_eq!(fn_.to_bcd(), bcd);
        assert!(fn_.is_valid());
        assert_eq!(fn_.to_string(), "999907891234567");
    }

    #[test]
    fn bad_nibble_is_an_error() {
        assert!(FnNumber::from_bcd(&[0x9A, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn strict_parse() {
        assert!(FnNumber::parse_strict("9999078900005488").is_ok());
        assert_eq!(FnNumber::parse_strict("99990789"), Err(FnNumberError::Length(8)));
        assert_eq!(FnNumber::parse_strict("99990789000054x8"), Err(FnNumberError::NotDigit(14)));
    }

    #[test]
    fn nul_padding_reads_as_space() {
        let mut raw = *b"9999078950      ";
        raw[10] = 0;
        assert_eq!(FnNumber::from_ascii(&raw).as_bytes(), b"9999078950      ");
    }
}
