//! Validated identifiers and time: the registration number of a register (RNM), the INN
//! of its owner, and a millisecond timestamp that prints as RFC 3339.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why an identifier was refused. Messages name the field and the rule, because admins
/// see them verbatim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Wrong number of characters.
    #[error("{field} must be {expected} digits, got {got} characters")]
    Length {
        /// Field name.
        field: &'static str,
        /// Allowed lengths, e.g. "10 or 12".
        expected: &'static str,
        /// Length seen.
        got: usize,
    },
    /// A non-digit.
    #[error("{field} must contain digits only")]
    NotDigits {
        /// Field name.
        field: &'static str,
    },
    /// The control digits do not match.
    #[error("{field} {value} fails its checksum (control digits should be {expected})")]
    Checksum {
        /// Field name.
        field: &'static str,
        /// Value as given.
        value: String,
        /// The correct control digits.
        expected: String,
    },
    /// A timestamp that could not be parsed.
    #[error("invalid time {0:?}: expected RFC 3339, e.g. 2026-11-23T10:00:00Z")]
    Time(String),
}

fn digits(field: &'static str, s: &str, lens: &[usize], expected: &'static str) -> Result<(), IdError> {
    if !lens.contains(&s.len()) {
        return Err(IdError::Length { field, expected, got: s.chars().count() });
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IdError::NotDigits { field });
    }
    Ok(())
}

/// A taxpayer number: 10 digits (organisations) or 12 (individuals), with control digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Inn(String);

impl Inn {
    /// Parses and verifies the control digits.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let s = s.trim();
        digits("INN", s, &[10, 12], "10 or 12")?;
        let d: Vec<u32> = s.bytes().map(|b| u32::from(b - b'0')).collect();
        let check = |w: &[u32]| w.iter().zip(&d).map(|(w, d)| w * d).sum::<u32>() % 11 % 10;
        let expected: Vec<u32> = if d.len() == 10 {
            vec![check(&[2, 4, 10, 3, 5, 9, 4, 6, 8])]
        } else {
            vec![check(&[7, 2, 4, 10, 3, 5, 9, 4, 6, 8]), check(&[3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8])]
        };
        let got = &d[d.len() - expected.len()..];
        if got != expected.as_slice() {
            return Err(IdError::Checksum {
                field: "INN",
                value: s.to_owned(),
                expected: expected.iter().map(u32::to_string).collect(),
            });
        }
        Ok(Self(s.to_owned()))
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Inn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Inn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Inn::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for Inn {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A register's registration number (РНМ): 10 digits assigned by the tax service and a
/// 6-digit check code. The check code is CRC-16/CCITT-FALSE over
/// `sequence (10) + owner INN zero-padded to 12 + KKT serial zero-padded to 20`, in decimal
/// zero-padded to 6 digits — so it can only be verified together with INN and serial
/// ([`Rnm::verify`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Rnm(String);

impl Rnm {
    /// Parses the 16-digit form (does not verify the check code).
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let s = s.trim();
        digits("RNM", s, &[16], "16")?;
        Ok(Self(s.to_owned()))
    }

    /// The check code for a sequence number, owner INN and KKT serial.
    pub fn check_code(sequence: &str, inn: &Inn, kkt_serial: &str) -> String {
        let input = format!("{sequence:0>10}{:0>12}{:0>20}", inn.as_str(), kkt_serial.trim());
        format!("{:06}", ffd::crc::crc16(input.as_bytes()))
    }

    /// Builds a valid RNM from its sequence number (≤ 10 digits).
    pub fn compose(sequence: u64, inn: &Inn, kkt_serial: &str) -> Self {
        let seq = format!("{sequence:010}");
        let code = Self::check_code(&seq, inn, kkt_serial);
        Self(format!("{seq}{code}"))
    }

    /// Verifies the check code against the owner INN and KKT serial number.
    pub fn verify(&self, inn: &Inn, kkt_serial: &str) -> Result<(), IdError> {
        let expected = Self::check_code(&self.0[..10], inn, kkt_serial);
        if self.0[10..] == expected {
            Ok(())
        } else {
            Err(IdError::Checksum { field: "RNM", value: self.0.clone(), expected })
        }
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Rnm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Rnm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Rnm::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for Rnm {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Milliseconds since the Unix epoch, UTC. Serialises as RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Self(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    /// From Unix seconds.
    pub fn from_unix_secs(secs: i64) -> Self {
        Self(secs.saturating_mul(1000))
    }

    /// Unix seconds (truncated).
    pub fn unix_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// Milliseconds.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// This time plus a duration.
    pub fn plus(self, d: std::time::Duration) -> Self {
        Self(self.0.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
    }

    /// This time minus a duration.
    pub fn minus(self, d: std::time::Duration) -> Self {
        Self(self.0.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
    }

    /// Time elapsed from `earlier` to `self` (zero if negative).
    pub fn since(self, earlier: Timestamp) -> std::time::Duration {
        std::time::Duration::from_millis(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }

    /// Parses RFC 3339.
    pub fn parse_rfc3339(s: &str) -> Result<Self, IdError> {
        let t = time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
            .map_err(|_| IdError::Time(s.to_owned()))?;
        Ok(Self(i64::try_from(t.unix_timestamp_nanos() / 1_000_000).map_err(|_| IdError::Time(s.to_owned()))?))
    }

    /// RFC 3339 in UTC with millisecond precision.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
            .unwrap_or_else(|| self.0.to_string())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Text(String),
            Millis(i64),
        }
        match Repr::deserialize(d)? {
            Repr::Text(s) => Timestamp::parse_rfc3339(&s).map_err(serde::de::Error::custom),
            Repr::Millis(m) => Ok(Timestamp(m)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inn_checksums() {
        assert!(Inn::parse("7702203276").is_ok());
        assert!(Inn::parse("7704358518").is_ok());
        assert!(Inn::parse("7704211201").is_ok());
        assert!(Inn::parse("771234567890").is_err(), "synthetic cashier INN of S1 fails its checksum");
        assert!(Inn::parse("500100732259").is_ok());
        let e = Inn::parse("7702203277").expect_err("bad control digit");
        assert!(e.to_string().contains("INN 7702203277 fails its checksum"), "{e}");
        assert!(matches!(Inn::parse("77022"), Err(IdError::Length { .. })));
        assert!(matches!(Inn::parse("77022032a6"), Err(IdError::NotDigits { .. })));
    }

    #[test]
    fn rnm_check_code_of_reference_samples() {
        let inn = Inn::parse("7702203276").expect("inn");
        assert_eq!(Rnm::check_code("0000000005", &inn, "000000000002"), "008570");
        let rnm = Rnm::parse("0000000005008570").expect("rnm");
        assert!(rnm.verify(&inn, "000000000002").is_ok());
        assert!(rnm.verify(&inn, "000000000003").is_err());
        let inn2 = Inn::parse("7802781104").expect("inn");
        assert_eq!(Rnm::check_code("0000000000", &inn2, "0128003270"), "024136");
        assert_eq!(Rnm::compose(5, &inn, "000000000002"), rnm);
    }

    #[test]
    fn timestamps_print_and_parse() {
        let t = Timestamp::from_unix_secs(1_488_541_080);
        assert_eq!(t.to_rfc3339(), "2017-03-03T11:38:00Z");
        assert_eq!(Timestamp::parse_rfc3339("2017-03-03T14:38:00+03:00"), Ok(t));
        let json = serde_json::to_string(&t).expect("serialise");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).expect("parse"), t);
    }
}
