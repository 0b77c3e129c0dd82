//! The 30-byte session header that precedes every message on the TCP stream.
//!
//! ```text
//! off len field
//!   0   4 signature        2A 08 41 0A (OFD channel) | DD 80 CA A1 (marking / key-update pings)
//!   4   2 S-version        81 A2 for OFD traffic
//!   6   2 P-version        wire order; loosely related to the FFD version (see `ffd_hint`)
//!   8  16 FN number        ASCII, sometimes space-padded
//!  24   2 body length      u16 LE, 0 for a header-only "ping"
//!  26   2 flags            u16 LE: bits 0-1 CRC mode, bit 2 container, bits 4-5 response wanted
//!  28   2 check code       u16 LE, per the CRC mode
//! ```

use crate::crc::{crc16, crc16_parts};
use crate::error::FfdError;
use crate::fn_number::FnNumber;
use crate::tlv::FfdVersion;

/// Length of the session header.
pub const SESSION_HEADER_LEN: usize = 30;
/// Signature of the KKT/FN ↔ OFD channel.
pub const SIGNATURE_OFD: [u8; 4] = [0x2A, 0x08, 0x41, 0x0A];
/// Signature used by marking (OISM) traffic and by reception-point / key-server pings.
pub const SIGNATURE_MARKING: [u8; 4] = [0xDD, 0x80, 0xCA, 0xA1];
/// S-protocol version of OFD traffic (session protocol 1.1).
pub const S_VERSION_OFD: [u8; 2] = [0x81, 0xA2];

/// Which service a header addresses, from its signature and S-version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Fiscal documents to the operator (`2A 08 41 0A`, `81 A2`).
    Ofd,
    /// Marking traffic to OISM (`DD 80 CA A1`, `82 A2`).
    Marking,
    /// "Check of the OFD's reception point only" (`DD 80 CA A1`, `82 FB`).
    ReceptionCheck,
    /// Key-update server ping (`DD 80 CA A1`, `82 A1`).
    KeyUpdate,
}

/// How the session check code is computed (flags bits 0–1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrcMode {
    /// No check code; the field is 0.
    None,
    /// CRC over header bytes 0–27.
    Header,
    /// CRC over header bytes 0–27 followed by the body.
    HeaderAndBody,
}

/// Session flags (u16 LE at offset 26).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags(pub u16);

impl Flags {
    /// What every captured register message carries: container + response expected, no CRC.
    pub const REGISTER_DEFAULT: Flags = Flags(0x0014);
    /// Bit 2: the body is a container.
    pub const CONTAINER: u16 = 0x0004;
    /// Bits 4–5 = 01: a response is expected.
    pub const RESPONSE_EXPECTED: u16 = 0x0010;

    /// The CRC mode, or `None` for the undefined mode 3.
    pub fn crc_mode(self) -> Option<CrcMode> {
        match self.0 & 0x3 {
            0 => Some(CrcMode::None),
            1 => Some(CrcMode::Header),
            2 => Some(CrcMode::HeaderAndBody),
            _ => None,
        }
    }

    /// The same flags with another CRC mode.
    pub fn with_crc_mode(self, mode: CrcMode) -> Flags {
        let bits = match mode {
            CrcMode::None => 0,
            CrcMode::Header => 1,
            CrcMode::HeaderAndBody => 2,
        };
        Flags((self.0 & !0x3) | bits)
    }

    /// Bit 2.
    pub fn has_container(self) -> bool {
        self.0 & Self::CONTAINER != 0
    }
}

/// A decoded session header. `fn_number` keeps the 16 bytes as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionHeader {
    /// Bytes 0–3.
    pub signature: [u8; 4],
    /// Bytes 4–5.
    pub s_version: [u8; 2],
    /// Bytes 6–7, wire order.
    pub p_version: [u8; 2],
    /// Bytes 8–23.
    pub fn_number: [u8; 16],
    /// Bytes 24–25.
    pub body_len: u16,
    /// Bytes 26–27.
    pub flags: Flags,
    /// Bytes 28–29.
    pub crc: u16,
}

impl SessionHeader {
    /// Reads the 30 bytes without judging them.
    pub fn read(bytes: &[u8; SESSION_HEADER_LEN]) -> Self {
        let u16le = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
        let mut fn_number = [0u8; 16];
        fn_number.copy_from_slice(&bytes[8..24]);
        Self {
            signature: [bytes[0], bytes[1], bytes[2], bytes[3]],
            s_version: [bytes[4], bytes[5]],
            p_version: [bytes[6], bytes[7]],
            fn_number,
            body_len: u16le(24),
            flags: Flags(u16le(26)),
            crc: u16le(28),
        }
    }

    /// Reads and validates the fixed fields: signature, S-version, CRC mode.
    /// `bytes` must hold at least 30 bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, FfdError> {
        let head: &[u8; SESSION_HEADER_LEN] = bytes
            .get(..SESSION_HEADER_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(FfdError::TruncatedHeader(bytes.len()))?;
        let header = Self::read(head);
        header.channel()?;
        if header.flags.crc_mode().is_none() {
            return Err(FfdError::BadFlags(header.flags.0));
        }
        Ok(header)
    }

    /// Checks a signature prefix as soon as its bytes arrive, so garbage is refused without
    /// waiting for a whole header.
    pub fn check_signature_prefix(prefix: &[u8]) -> Result<(), FfdError> {
        let n = prefix.len().min(4);
        let ok = prefix[..n] == SIGNATURE_OFD[..n] || prefix[..n] == SIGNATURE_MARKING[..n];
        if ok {
            Ok(())
        } else {
            let mut sig = [0u8; 4];
            sig[..n].copy_from_slice(&prefix[..n]);
            Err(FfdError::BadSignature(sig))
        }
    }

    /// The channel named by signature and S-version.
    pub fn channel(&self) -> Result<Channel, FfdError> {
        match (self.signature, self.s_version) {
            (SIGNATURE_OFD, S_VERSION_OFD) => Ok(Channel::Ofd),
            (SIGNATURE_MARKING, [0x82, 0xA2]) => Ok(Channel::Marking),
            (SIGNATURE_MARKING, [0x82, 0xFB]) => Ok(Channel::ReceptionCheck),
            (SIGNATURE_MARKING, [0x82, 0xA1]) => Ok(Channel::KeyUpdate),
            (SIGNATURE_OFD | SIGNATURE_MARKING, v) => Err(FfdError::UnsupportedSessionVersion(v)),
            (s, _) => Err(FfdError::BadSignature(s)),
        }
    }

    /// The FN number of the header.
    pub fn fn_number(&self) -> FnNumber {
        FnNumber::from_ascii(&self.fn_number)
    }

    /// A header-only message (a "ping").
    pub fn is_ping(&self) -> bool {
        self.body_len == 0
    }

    /// Serialises the header as it stands (the `crc` field is written as is).
    pub fn to_bytes(&self) -> [u8; SESSION_HEADER_LEN] {
        let mut out = [0u8; SESSION_HEADER_LEN];
        out[0..4].copy_from_slice(&self.signature);
        out[4..6].copy_from_slice(&self.s_version);
        out[6..8].copy_from_slice(&self.p_version);
        out[8..24].copy_from_slice(&self.fn_number);
        out[24..26].copy_from_slice(&self.body_len.to_le_bytes());
        out[26..28].copy_from_slice(&self.flags.0.to_le_bytes());
        out[28..30].copy_from_slice(&self.crc.to_le_bytes());
        out
    }

    /// The check code this header should carry for `body`, per its own CRC mode. The
    /// flags inside the covered bytes are the ones transmitted.
    pub fn compute_crc(&self, body: &[u8]) -> u16 {
        let bytes = self.to_bytes();
        match self.flags.crc_mode() {
            Some(CrcMode::Header) => crc16(&bytes[..28]),
            Some(CrcMode::HeaderAndBody) => crc16_parts(&[&bytes[..28], body]),
            Some(CrcMode::None) | None => 0,
        }
    }

    /// Verifies the check code against `body` (mode 0 accepts any value: registers in the
    /// field send 0 there, and nothing is gained by refusing a stray value).
    pub fn verify_crc(&self, body: &[u8]) -> Result<(), FfdError> {
        match self.flags.crc_mode() {
            None => Err(FfdError::BadFlags(self.flags.0)),
            Some(CrcMode::None) => Ok(()),
            Some(_) => {
                let computed = self.compute_crc(body);
                if computed == self.crc {
                    Ok(())
                } else {
                    Err(FfdError::SessionCrcMismatch { declared: self.crc, computed })
                }
            }
        }
    }

    /// The same header with its check code filled in for `body`.
    pub fn with_crc(mut self, body: &[u8]) -> Self {
        self.crc = self.compute_crc(body);
        self
    }

    /// A header for a message a register sends: OFD signature, flags 0x0014 (no CRC).
    pub fn for_register(fn_number: &FnNumber, p_version: [u8; 2], body_len: u16) -> Self {
        Self {
            signature: SIGNATURE_OFD,
            s_version: S_VERSION_OFD,
            p_version,
            fn_number: *fn_number.as_bytes(),
            body_len,
            flags: Flags::REGISTER_DEFAULT,
            crc: 0,
        }
    }

    /// The FFD version the P-version suggests. Only a hint: registers are known to send
    /// `00 01` with FFD 1.05 documents, and some Shtrih devices send `01 01`/`01 02` for
    /// 1.1/1.2. The document's tag 1209 is authoritative.
    pub fn ffd_hint(&self) -> Option<FfdVersion> {
        p_version_hint(self.p_version)
    }
}

/// The FFD version suggested by a P-version, tolerating the known quirks.
pub fn p_version_hint(p: [u8; 2]) -> Option<FfdVersion> {
    match p {
        [0x01, 0x00] | [0x00, 0x01] | [0x00, 0x02] => Some(FfdVersion::V1_0),
        [0x01, 0x05] => Some(FfdVersion::V1_05),
        [0x01, 0x10] | [0x01, 0x01] => Some(FfdVersion::V1_1),
        [0x01, 0x20] | [0x01, 0x02] => Some(FfdVersion::V1_2),
        _ => None,
    }
}

/// The P-version bytes registers send for a given FFD version.
pub fn p_version_for(ffd: FfdVersion) -> [u8; 2] {
    match ffd {
        FfdVersion::V1_0 => [0x01, 0x00],
        FfdVersion::V1_05 => [0x01, 0x05],
        FfdVersion::V1_1 => [0x01, 0x10],
        FfdVersion::V1_2 => [0x01, 0x20],
    }
}
