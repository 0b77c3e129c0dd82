//! VAT rates as tag 1199 codes them, and where a receipt states its VAT per rate.
//!
//! Codes 1–6 are those of the FFD since 2019 (when 18 % became 20 %, codes 1 and 3 were
//! renamed, not renumbered). Codes 7–10 (5 %, 7 %, 5/105, 7/107) were added from
//! 1 January 2025 (FNS order ЕД-7-20/1038@ of 15.11.2024). The standard rate of 22 % from
//! 1 January 2026 took **new** codes, 11 (22 %) and 12 (22/122) (FNS order ЕД-7-20/1050@ of
//! 08.12.2025, applied from 5 January 2026); codes 1 and 3 keep their 20 % meaning for the
//! documents that still carry them. Sources and what is unconfirmed: `docs/ffd-testing.md`.
//!
//! A receipt states VAT per rate in two ways: the flat tags 1102–1107 for codes 1–6, and
//! for every other code the container 1115 ("суммы НДС чека") holding one 1119 per rate
//! (1199 = code, 1120 = amount). There is no flat tag for codes 7–12.

use crate::document::{Document, Value};

/// One code of tag 1199.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VatRate {
    /// The value of tag 1199.
    pub code: u8,
    /// Its name in the FFD table ("НДС 22%").
    pub name: &'static str,
    /// The rate in percent (0 for 0 % and for "not subject to VAT").
    pub percent: u8,
    /// A calculated rate (20/120 and the like: VAT contained in the price).
    pub calculated: bool,
    /// The receipt-level tag that sums it (1102–1107), or `None` when only 1115 can.
    pub receipt_tag: Option<u16>,
    /// For 0 % and "not subject": the receipt tag holds the turnover, not a VAT amount.
    pub base_only: bool,
}

/// Every code of tag 1199 in force in 2026.
pub static RATES: &[VatRate] = &[
    rate(1, "НДС 20%", 20, false, Some(1102), false),
    rate(2, "НДС 10%", 10, false, Some(1103), false),
    rate(3, "НДС расч. 20/120", 20, true, Some(1106), false),
    rate(4, "НДС расч. 10/110", 10, true, Some(1107), false),
    rate(5, "НДС 0%", 0, false, Some(1104), true),
    rate(6, "НДС не облагается", 0, false, Some(1105), true),
    rate(7, "НДС 5%", 5, false, None, false),
    rate(8, "НДС 7%", 7, false, None, false),
    rate(9, "НДС расч. 5/105", 5, true, None, false),
    rate(10, "НДС расч. 7/107", 7, true, None, false),
    rate(11, "НДС 22%", 22, false, None, false),
    rate(12, "НДС расч. 22/122", 22, true, None, false),
];

const fn rate(
    code: u8,
    name: &'static str,
    percent: u8,
    calculated: bool,
    receipt_tag: Option<u16>,
    base_only: bool,
) -> VatRate {
    VatRate { code, name, percent, calculated, receipt_tag, base_only }
}

/// The rate of a 1199 code.
pub fn rate_of(code: u8) -> Option<&'static VatRate> {
    RATES.iter().find(|r| r.code == code)
}

impl VatRate {
    /// The VAT contained in `sum` (which includes it), rounded half up to the kopeck:
    /// `sum × p / (100 + p)`.
    pub fn included_in(&self, sum: u64) -> u64 {
        let p = u128::from(self.percent);
        if p == 0 {
            return 0;
        }
        let num = u128::from(sum) * p;
        let den = 100 + p;
        u64::try_from((num + den / 2) / den).unwrap_or(u64::MAX)
    }
}

/// VAT per rate as a receipt states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VatTotal {
    /// The 1199 code.
    pub code: u8,
    /// The rate, when the code is known.
    pub rate: Option<&'static VatRate>,
    /// VAT in kopecks, or the turnover for 0 % and "not subject".
    pub amount: u64,
}

/// The per-rate VAT a receipt states at its top level: the flat tags 1102–1107 and the
/// 1119 entries inside 1115, in code order (a code stated twice is summed).
pub fn receipt_totals(doc: &Document) -> Vec<VatTotal> {
    let mut out: Vec<VatTotal> = Vec::new();
    let mut add = |code: u8, amount: u64| match out.iter_mut().find(|t| t.code == code) {
        Some(t) => t.amount = t.amount.saturating_add(amount),
        None => out.push(VatTotal { code, rate: rate_of(code), amount }),
    };
    for f in &doc.fields {
        if let Some(r) = RATES.iter().find(|r| r.receipt_tag == Some(f.tag)) {
            if let Some(v) = f.value.as_u64() {
                add(r.code, v);
            }
        } else if f.tag == 1115 {
            for entry in f.value.fields().unwrap_or_default().iter().filter(|c| c.tag == 1119) {
                let children = entry.value.fields().unwrap_or_default();
                let get = |tag| children.iter().find(|c| c.tag == tag).and_then(|c| c.value.as_u64());
                if let (Some(code), Some(amount)) = (get(1199), get(1120)) {
                    add(u8::try_from(code).unwrap_or(u8::MAX), amount);
                }
            }
        }
    }
    out.sort_by_key(|t| t.code);
    out
}

/// The 1199 codes of the items of a receipt (each item's own rate), for display.
pub fn item_codes(doc: &Document) -> impl Iterator<Item = u8> + '_ {
    doc.get_all(1059)
        .filter_map(|item| match item {
            Value::Stlv(children) => children.iter().find(|c| c.tag == 1199).and_then(|c| c.value.as_u64()),
            _ => None,
        })
        .filter_map(|c| u8::try_from(c).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_named_and_unique() {
        for (i, r) in RATES.iter().enumerate() {
            assert_eq!(usize::from(r.code), i + 1);
            assert_eq!(rate_of(r.code), Some(r));
        }
        assert_eq!(rate_of(11).map(|r| r.name), Some("НДС 22%"));
        assert_eq!(rate_of(12).map(|r| r.name), Some("НДС расч. 22/122"));
        assert_eq!(rate_of(13), None);
    }

    #[test]
    fn included_vat_rounds_half_up() {
        let r22 = rate_of(11).expect("22%");
        assert_eq!(r22.included_in(12_200), 2_200);
        assert_eq!(r22.included_in(80_730), 14_558); // a 2026 FNS receipt: 807.30 with 145.58 VAT
        assert_eq!(rate_of(1).map(|r| r.included_in(100)), Some(17)); // 16.67
        assert_eq!(rate_of(7).map(|r| r.included_in(10_500)), Some(500));
        assert_eq!(rate_of(6).map(|r| r.included_in(10_500)), Some(0));
    }
}
