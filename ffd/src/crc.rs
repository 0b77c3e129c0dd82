//! Check codes: CRC-16/CCITT-FALSE (reveng: CRC-16/IBM-3740) — width 16, polynomial
//! 0x1021, init 0xFFFF, no reflection, no final xor. Both the session header (modes 1 and
//! 2 of its flags) and the container use it.
//!
//! The container CRC covers the container *except the two CRC bytes themselves*: bytes
//! `[0..2)` followed by `[4..end)` (skipped, not zeroed — the zeroing variant found in one
//! client disagrees with every captured container).

use crc::{CRC_16_IBM_3740, Crc, Table};

/// Slice-by-16 tables: the CRC runs over every received byte, so it is worth the 8 KiB.
const CRC16: Crc<u16, Table<16>> = Crc::<u16, Table<16>>::new(&CRC_16_IBM_3740);

/// CRC of one contiguous slice.
pub fn crc16(data: &[u8]) -> u16 {
    CRC16.checksum(data)
}

/// CRC of several slices, as if they were concatenated.
pub fn crc16_parts(parts: &[&[u8]]) -> u16 {
    let mut digest = CRC16.digest();
    for part in parts {
        digest.update(part);
    }
    digest.finalize()
}

/// The container check code: everything but bytes 2..4.
///
/// `container` must be at least 4 bytes long (callers check the 32-byte header first).
pub fn container_crc(container: &[u8]) -> u16 {
    debug_assert!(container.len() >= 4);
    let head = container.get(..2).unwrap_or_default();
    let tail = container.get(4..).unwrap_or_default();
    crc16_parts(&[head, tail])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_check_value() {
        assert_eq!(crc16(b"123456789"), 0x29B1);
        assert_eq!(crc16_parts(&[b"1234", b"56789"]), 0x29B1);
    }
}
