//! The requisite dictionary (FFD 1.0–1.2 with the amendments in force in 2026): for each
//! tag its value type, maximum length, Russian name, whether it may repeat, the first FFD
//! version that has it, and its name in the FNS JSON format; for each document form its
//! maximum length, JSON name and mandatory requisites. The hot-path validator
//! ([`crate::inspect`]), the tree decoder ([`crate::document`]) and the JSON writer
//! ([`crate::json`]) all read this one table.
//!
//! Where public tables disagree on a maximum (1059: 328 vs 1024; 1084: 320 vs 328; the
//! counters' sums: 6 vs 8 bytes) the larger value is used: the fiscal drive checks a
//! document's format before it signs it, so an operator stricter than the drive would
//! refuse signed documents for nothing. Integer types are decoded from any length up to
//! `max_len` (1213 arrives in 2 bytes from some registers). Tags whose meaning was
//! reassigned (1082, 1115, 1119, 1120, 1125) keep their withdrawn meaning as a [`Legacy`]
//! fallback. Every changed row and its source: `docs/ffd-testing.md`, "The tag table".

use crate::tlv::FfdVersion;

/// How a value is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// One byte (flags, enums, booleans).
    Byte,
    /// Little-endian integer, nominal 2 bytes.
    U16,
    /// Little-endian integer, nominal 4 bytes.
    U32,
    /// Variable-length unsigned integer (money in kopecks).
    Vln,
    /// Variable-length decimal.
    Fvln,
    /// Seconds since 1970, u32 LE.
    UnixTime,
    /// CP866 string.
    Str,
    /// Raw bytes.
    Bytes,
    /// Nested requisites.
    Stlv,
}

/// One dictionary entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagInfo {
    /// Tag number.
    pub tag: u16,
    /// Value encoding.
    pub ty: ValueType,
    /// Maximum value length in bytes.
    pub max_len: u16,
    /// Name in the FNS JSON format, where known.
    pub json: Option<&'static str>,
    /// May appear several times in its parent.
    pub repeatable: bool,
    /// Withdrawn from current FFD versions (still decoded).
    pub deprecated: bool,
    /// The first FFD version that has the requisite with this meaning. Informational: a
    /// document of an older version that carries it is still accepted (the drive signed
    /// it) and reported in [`crate::inspect::Summary::newer_tags`].
    pub since: FfdVersion,
    /// Russian name from the FFD tables.
    pub name: &'static str,
}

/// The withdrawn meaning of a reassigned tag (see [`legacy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Legacy {
    /// Tag number.
    pub tag: u16,
    /// Value encoding of the withdrawn requisite.
    pub ty: ValueType,
    /// Its maximum length.
    pub max_len: u16,
    /// Its Russian name.
    pub name: &'static str,
}

include!("tags_table.rs");

/// The withdrawn meaning of `tag`, for tags whose meaning the format reassigned. Looked up
/// only when a value does not fit the current meaning (off the accepting path).
pub fn legacy(tag: u16) -> Option<&'static Legacy> {
    LEGACY.iter().find(|l| l.tag == tag)
}

/// The tag an FNS JSON key stands for inside `parent` (the enclosing STLV's tag, or the
/// form code at the top level). Keys shared by two tags are resolved by where each
/// appears ([`JSON_WITHIN`]); a key that is a number is that tag.
pub fn by_json_name(name: &str, parent: u16) -> Option<u16> {
    let mut fallback = None;
    for t in TAGS.iter().filter(|t| t.json == Some(name)) {
        match JSON_WITHIN.iter().find(|(tag, _)| *tag == t.tag) {
            Some((_, within)) if within.contains(&parent) => return Some(t.tag),
            Some(_) => {}
            None => fallback = fallback.or(Some(t.tag)),
        }
    }
    fallback
        .or_else(|| TAGS.iter().find(|t| t.json == Some(name)).map(|t| t.tag))
        .or_else(|| JSON_ALIASES.iter().find(|(alias, _)| *alias == name).map(|(_, tag)| *tag))
        .or_else(|| name.parse().ok())
}

/// The class of a tag for the unknown-tag policy: the FFD requisite range (1000–1999),
/// the marking range of FFD 1.2 (2000–2999), or anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TagClass {
    /// 1000–1999.
    Requisite,
    /// 2000–2999.
    Marking,
    /// Below 1000 or from 3000 on.
    Other,
}

impl TagClass {
    /// The class of `tag`.
    pub fn of(tag: u16) -> Self {
        match tag {
            1000..=1999 => Self::Requisite,
            2000..=2999 => Self::Marking,
            _ => Self::Other,
        }
    }

    /// Stable name (config keys, logs).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requisite => "requisite",
            Self::Marking => "marking",
            Self::Other => "other",
        }
    }
}

/// A bounded label for a tag number: its hundred within 1000–2999 (`"1200-1299"`), or
/// `"other"` — 21 values at most, so a metric labelled with it stays small whatever
/// registers send.
pub fn tag_bucket(tag: u16) -> &'static str {
    const BUCKETS: [&str; 20] = [
        "1000-1099",
        "1100-1199",
        "1200-1299",
        "1300-1399",
        "1400-1499",
        "1500-1599",
        "1600-1699",
        "1700-1799",
        "1800-1899",
        "1900-1999",
        "2000-2099",
        "2100-2199",
        "2200-2299",
        "2300-2399",
        "2400-2499",
        "2500-2599",
        "2600-2699",
        "2700-2799",
        "2800-2899",
        "2900-2999",
    ];
    match tag {
        1000..=2999 => BUCKETS[usize::from((tag - 1000) / 100)],
        _ => "other",
    }
}

/// Looks a tag up: one indexed load (this runs for every requisite on the ingest hot
/// path, where a binary search over the table was most of the cost of `inspect`).
pub fn lookup(tag: u16) -> Option<&'static TagInfo> {
    let i = *INDEX.get(slot(tag)?)?;
    TAGS.get(usize::from(i))
}

/// Dictionary tags live in two dense ranges: 1000–1399 (FFD requisites) and 2000–2199
/// (marking requisites of FFD 1.2).
const RANGES: [(u16, u16); 2] = [(1000, 400), (2000, 200)];
/// Slots of [`INDEX`].
const SLOTS: usize = RANGES[0].1 as usize + RANGES[1].1 as usize;
/// Marks a slot without a tag.
const NO_TAG: u16 = u16::MAX;

/// The index of `tag` in [`INDEX`], if it falls in one of the ranges.
const fn slot(tag: u16) -> Option<usize> {
    let (a, a_len) = RANGES[0];
    let (b, b_len) = RANGES[1];
    if tag >= a && tag - a < a_len {
        Some((tag - a) as usize)
    } else if tag >= b && tag - b < b_len {
        Some(a_len as usize + (tag - b) as usize)
    } else {
        None
    }
}

/// Slot -> position in [`TAGS`] (or [`NO_TAG`]), built at compile time. Building fails to
/// compile if a dictionary tag falls outside the ranges.
static INDEX: [u16; SLOTS] = {
    let mut index = [NO_TAG; SLOTS];
    let mut i = 0;
    while i < TAGS.len() {
        match slot(TAGS[i].tag) {
            Some(s) => index[s] = i as u16,
            None => panic!("dictionary tag outside the indexed ranges"),
        }
        i += 1;
    }
    index
};

/// The whole dictionary, sorted by tag.
pub fn all() -> &'static [TagInfo] {
    TAGS
}

/// A document form (form code = container byte 5 = outer TLV tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocTypeInfo {
    /// Form code.
    pub code: u8,
    /// Name in the FNS JSON format.
    pub json: &'static str,
    /// Russian name.
    pub name: &'static str,
    /// Largest document value allowed for the form.
    pub max_len: usize,
    /// Requisites that must be present at the top level.
    pub mandatory: &'static [u16],
}

/// Requisites every FN-produced fiscal document carries: its number, the FN, the time and
/// the fiscal sign. Form-specific additions are deliberately conservative — a document
/// failing them is still stored and acknowledged (code 14), but the register is told.
const COMMON: &[u16] = &[1040, 1041, 1012, 1077];
const REGISTRATION: &[u16] = &[1040, 1041, 1012, 1077, 1018, 1037];
const SHIFT: &[u16] = &[1040, 1041, 1012, 1077, 1038];
const RECEIPT: &[u16] = &[1040, 1041, 1012, 1077, 1054, 1020];

static DOC_TYPES: &[DocTypeInfo] = &[
    DocTypeInfo {
        code: 1, json: "fiscalReport", name: "Отчёт о регистрации", max_len: 6144, mandatory: REGISTRATION
    },
    DocTypeInfo {
        code: 2, json: "openShift", name: "Отчёт об открытии смены", max_len: 4096, mandatory: SHIFT
    },
    DocTypeInfo { code: 3, json: "receipt", name: "Кассовый чек", max_len: 32768, mandatory: RECEIPT },
    DocTypeInfo {
        code: 4, json: "bso", name: "Бланк строгой отчётности", max_len: 32768, mandatory: RECEIPT
    },
    DocTypeInfo {
        code: 5, json: "closeShift", name: "Отчёт о закрытии смены", max_len: 4096, mandatory: SHIFT
    },
    DocTypeInfo {
        code: 6,
        json: "closeArchive",
        name: "Отчёт о закрытии фискального накопителя",
        max_len: 4096,
        mandatory: COMMON,
    },
    DocTypeInfo {
        code: 7,
        json: "operatorAck",
        name: "Подтверждение оператора",
        max_len: 512,
        mandatory: &[1041, 1040, 1012],
    },
    DocTypeInfo {
        code: 11,
        json: "fiscalReportCorrection",
        name: "Отчёт об изменении параметров регистрации",
        max_len: 6144,
        mandatory: REGISTRATION,
    },
    DocTypeInfo {
        code: 21,
        json: "currentStateReport",
        name: "Отчёт о текущем состоянии расчётов",
        max_len: 32768,
        mandatory: COMMON,
    },
    DocTypeInfo {
        code: 31,
        json: "receiptCorrection",
        name: "Кассовый чек коррекции",
        max_len: 32768,
        mandatory: RECEIPT,
    },
    DocTypeInfo {
        code: 41, json: "bsoCorrection", name: "БСО коррекции", max_len: 32768, mandatory: RECEIPT
    },
];

/// Looks a form code up.
pub fn doc_type(code: u8) -> Option<&'static DocTypeInfo> {
    DOC_TYPES.iter().find(|d| d.code == code)
}

/// Every known form.
pub fn doc_types() -> &'static [DocTypeInfo] {
    DOC_TYPES
}

/// Forms an FN sends to the operator (7 travels the other way).
pub fn is_fn_document(code: u8) -> bool {
    code != 7 && doc_type(code).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexed_lookup_agrees_with_the_table() {
        for tag in 0..=u16::MAX {
            let linear = TAGS.iter().find(|t| t.tag == tag);
            assert_eq!(lookup(tag), linear, "tag {tag}");
        }
    }

    #[test]
    fn table_is_sorted_and_unique() {
        assert!(TAGS.windows(2).all(|w| w[0].tag < w[1].tag), "tags must be strictly sorted");
    }

    #[test]
    fn required_requisites_are_described() {
        // the tags the issue names explicitly
        let required = [
            1059, 1030, 1079, 1023, 1043, 1199, 1212, 1214, 1031, 1081, 1102, 1103, 1104, 1105, 1106, 1107, 1054, 1055,
            1021, 1009, 1187, 1038, 1097, 1098, 1116, 1111, 1118, 1050, 1051, 1052, 1053, 1213, 1017, 1018, 1037, 1040,
            1041, 1012, 1020, 1077, 1078, 1068, 1022, 1209, 1189, 1190, 1056, 1062, 1101, 1205, 1206, 1290, 2000,
        ];
        for tag in required {
            let info = lookup(tag).unwrap_or_else(|| panic!("tag {tag} missing"));
            assert!(info.max_len > 0, "tag {tag} has no maximum");
        }
        for tag in [1059, 1030, 1079, 1023, 1043, 1199, 1212, 1214, 1031, 1081, 1041, 1040, 1020] {
            assert!(lookup(tag).and_then(|t| t.json).is_some(), "tag {tag} has no JSON name");
        }
        assert_eq!(lookup(1059).map(|t| t.json), Some(Some("items")));
        assert_eq!(lookup(1213).map(|t| t.ty), Some(ValueType::U16));
    }
}
