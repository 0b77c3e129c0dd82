//! The container: a 32-byte header built by the FN (or by the operator's crypto module for
//! acknowledgments), then the document TLV, then a trailer carried verbatim.
//!
//! ```text
//! off len field
//!   0   2 length           u16 LE, the whole container (= session body length)
//!   2   2 check code       u16 LE, CRC over the container minus these two bytes
//!   4   1 message type     A5 from the FN, 5A from the operator
//!   5   1 document type    form code (= outer TLV tag)
//!   6   1 version          1
//!   7   2 service data 1   10 09 in every sample
//!   9   8 FN number        packed BCD, F = padding
//!  17   3 FD number        u24 BIG-endian
//!  20  12 service data 2   8 varying bytes, 2 bytes (00 02 / 00 04), u16 BE TLV length
//! ```

use bytes::Bytes;

use crate::crc::container_crc;
use crate::error::FfdError;
use crate::fn_number::FnNumber;

/// Length of the container header.
pub const CONTAINER_HEADER_LEN: usize = 32;
/// Message type of containers produced by an FN.
pub const MSG_FROM_FN: u8 = 0xA5;
/// Message type of operator acknowledgments (as real operators send them).
pub const MSG_FROM_OFD: u8 = 0x5A;
/// The only container version seen and accepted.
pub const CONTAINER_VERSION: u8 = 1;

/// A decoded container header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerHeader {
    /// Whole container length.
    pub len: u16,
    /// Check code as sent.
    pub crc: u16,
    /// `A5` or `5A`.
    pub msg_type: u8,
    /// Form code.
    pub doc_type: u8,
    /// Container version.
    pub version: u8,
    /// Service data 1 (copied into acknowledgments).
    pub service1: [u8; 2],
    /// FN number from the BCD field.
    pub fn_number: FnNumber,
    /// FD number (u24 BE on the wire).
    pub fd: u32,
    /// Service data 2.
    pub service2: [u8; 12],
}

impl ContainerHeader {
    /// Decodes the first 32 bytes of `bytes` (no length or CRC judgement here).
    pub fn parse(bytes: &[u8]) -> Result<Self, FfdError> {
        let h: &[u8; CONTAINER_HEADER_LEN] = bytes
            .get(..CONTAINER_HEADER_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(FfdError::ContainerTooShort(bytes.len()))?;
        let mut bcd = [0u8; 8];
        bcd.copy_from_slice(&h[9..17]);
        let mut service2 = [0u8; 12];
        service2.copy_from_slice(&h[20..32]);
        Ok(Self {
            len: u16::from_le_bytes([h[0], h[1]]),
            crc: u16::from_le_bytes([h[2], h[3]]),
            msg_type: h[4],
            doc_type: h[5],
            version: h[6],
            service1: [h[7], h[8]],
            fn_number: FnNumber::from_bcd(&bcd).map_err(|_| FfdError::BadFnBcd(bcd))?,
            fd: u32::from_be_bytes([0, h[17], h[18], h[19]]),
            service2,
        })
    }

    /// Writes the header into `out[..32]` (the `len` and `crc` fields as they stand).
    pub fn write(&self, out: &mut [u8; CONTAINER_HEADER_LEN]) {
        out[0..2].copy_from_slice(&self.len.to_le_bytes());
        out[2..4].copy_from_slice(&self.crc.to_le_bytes());
        out[4] = self.msg_type;
        out[5] = self.doc_type;
        out[6] = self.version;
        out[7..9].copy_from_slice(&self.service1);
        out[9..17].copy_from_slice(&self.fn_number.to_bcd());
        let fd = self.fd.to_be_bytes();
        out[17..20].copy_from_slice(&fd[1..4]);
        out[20..32].copy_from_slice(&self.service2);
    }

    /// The TLV length declared in the last two bytes of service data 2 (an inference from
    /// every captured container; informative only).
    pub fn declared_tlv_len(&self) -> u16 {
        u16::from_be_bytes([self.service2[10], self.service2[11]])
    }
}

/// A verified container: its header and its bytes, shared without copying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    header: ContainerHeader,
    bytes: Bytes,
}

impl Container {
    /// Decodes and verifies a container: length field equal to the body length, expected
    /// message type, version 1, valid BCD, matching check code. The CRC is checked before
    /// anything inside the container is looked at.
    pub fn parse(bytes: Bytes, expected_msg_type: u8) -> Result<Self, FfdError> {
        let header = ContainerHeader::parse(&bytes)?;
        if usize::from(header.len) != bytes.len() {
            return Err(FfdError::ContainerLengthMismatch { declared: usize::from(header.len), actual: bytes.len() });
        }
        let computed = container_crc(&bytes);
        if computed != header.crc {
            return Err(FfdError::ContainerCrcMismatch { declared: header.crc, computed });
        }
        if header.msg_type != expected_msg_type {
            return Err(FfdError::BadMessageType(header.msg_type));
        }
        if header.version != CONTAINER_VERSION {
            return Err(FfdError::UnsupportedContainerVersion(header.version));
        }
        Ok(Self { header, bytes })
    }

    /// The header.
    pub fn header(&self) -> &ContainerHeader {
        &self.header
    }

    /// All container bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Everything after the header: document TLV and trailer.
    pub fn data(&self) -> Bytes {
        self.bytes.slice(CONTAINER_HEADER_LEN..)
    }
}

/// What is needed to build a container around a document TLV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerSpec {
    /// `A5` or `5A`.
    pub msg_type: u8,
    /// Form code.
    pub doc_type: u8,
    /// Service data 1 (`10 09` in every sample).
    pub service1: [u8; 2],
    /// FN number.
    pub fn_number: FnNumber,
    /// FD number (must fit in 24 bits).
    pub fd: u32,
    /// The first 10 bytes of service data 2; the last two are the BE TLV length, filled in.
    pub service2_head: [u8; 10],
}

impl ContainerSpec {
    /// Service data 1 as seen in every captured container.
    pub const SERVICE1: [u8; 2] = [0x10, 0x09];

    /// Builds header + `document_tlv` + `trailer`, computing length, TLV length and CRC.
    ///
    /// # Panics
    /// If the container would exceed 65 535 bytes or the FD does not fit in 24 bits: both
    /// are programming errors of the caller, never driven by network input.
    pub fn build(&self, document_tlv: &[u8], trailer: &[u8]) -> Vec<u8> {
        let total = CONTAINER_HEADER_LEN + document_tlv.len() + trailer.len();
        let len = u16::try_from(total).expect("container larger than 65535 bytes");
        let tlv_len = u16::try_from(document_tlv.len()).expect("document larger than 65535 bytes");
        assert!(self.fd <= 0x00FF_FFFF, "FD number does not fit in 24 bits");
        let mut service2 = [0u8; 12];
        service2[..10].copy_from_slice(&self.service2_head);
        service2[10..].copy_from_slice(&tlv_len.to_be_bytes());
        let header = ContainerHeader {
            len,
            crc: 0,
            msg_type: self.msg_type,
            doc_type: self.doc_type,
            version: CONTAINER_VERSION,
            service1: self.service1,
            fn_number: self.fn_number,
            fd: self.fd,
            service2,
        };
        let mut out = vec![0u8; total];
        let mut head = [0u8; CONTAINER_HEADER_LEN];
        header.write(&mut head);
        out[..CONTAINER_HEADER_LEN].copy_from_slice(&head);
        out[CONTAINER_HEADER_LEN..CONTAINER_HEADER_LEN + document_tlv.len()].copy_from_slice(document_tlv);
        out[CONTAINER_HEADER_LEN + document_tlv.len()..].copy_from_slice(trailer);
        let crc = container_crc(&out);
        out[2..4].copy_from_slice(&crc.to_le_bytes());
        out
    }
}
