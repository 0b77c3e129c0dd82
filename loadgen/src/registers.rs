//! Register identities, reproducible from `(seed, index)` alone, so that several loadgen
//! processes can split one population with `--first-register`/`--count` without overlap,
//! and `loadgen registers` writes exactly the registers `loadgen run` will simulate.
//!
//! Numbering (the seed block is `seed mod 1000`, three digits):
//! * FN: `9999` (test drives) + seed block + index in 9 digits;
//! * RNM: sequence = seed block + index in 7 digits, then the CRC check code over
//!   sequence, owner INN and KKT serial ([`Rnm::compose`]);
//! * KKT serial: seed block + index in 9 digits;
//! * owner INN: 10 digits with a valid control digit, one owner per
//!   [`REGISTERS_PER_OWNER`] consecutive registers (a shop with several tills).
//!
//! Indexes therefore go up to [`MAX_INDEX`] (ten million registers per seed block).

use std::io::Write;
use std::path::Path;

use anyhow::Context as _;
use ffd::FnNumber;
use ffd::build::Identity;
use ffd::tlv::FfdVersion;
use serde::Serialize;
use storage::{Inn, Rnm};

/// Highest register index (the RNM sequence keeps 7 digits for it).
pub const MAX_INDEX: u64 = 9_999_999;
/// Consecutive registers that share an owner (INN), name prefix and group.
pub const REGISTERS_PER_OWNER: u64 = 4;
/// INN of the operator written into registration reports (a valid 10-digit INN).
pub const DEFAULT_OFD_INN: &str = "7704358518";

/// SplitMix64: a fixed, documented mixing function, so identities never change with a
/// dependency's version.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A hash of `(seed, domain, n)`.
pub fn hash3(seed: u64, domain: u64, n: u64) -> u64 {
    mix64(mix64(seed ^ mix64(domain)) ^ n)
}

/// Shares of FFD versions among registers, e.g. `1.05=20,1.1=10,1.2=70`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FfdMix {
    /// (version, weight) with positive weights.
    pub weights: Vec<(FfdVersionName, u32)>,
}

/// An FFD version as it is written in options and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(into = "&'static str")]
pub struct FfdVersionName(pub FfdVersion);

impl From<FfdVersionName> for &'static str {
    fn from(v: FfdVersionName) -> Self {
        v.0.as_str()
    }
}

impl Default for FfdMix {
    fn default() -> Self {
        Self {
            weights: vec![
                (FfdVersionName(FfdVersion::V1_05), 20),
                (FfdVersionName(FfdVersion::V1_1), 10),
                (FfdVersionName(FfdVersion::V1_2), 70),
            ],
        }
    }
}

impl std::str::FromStr for FfdMix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut weights = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (v, w) = part.split_once('=').unwrap_or((part, "1"));
            let version = match v.trim() {
                "1.05" => FfdVersion::V1_05,
                "1.1" => FfdVersion::V1_1,
                "1.2" => FfdVersion::V1_2,
                other => {
                    return Err(format!("unknown FFD version {other:?} (use 1.05, 1.1 or 1.2)"));
                }
            };
            let w: u32 = w.trim().parse().map_err(|_| format!("bad weight in {part:?}"))?;
            if w > 0 {
                weights.push((FfdVersionName(version), w));
            }
        }
        if weights.is_empty() {
            return Err("the FFD mix needs at least one version with a positive weight".into());
        }
        Ok(Self { weights })
    }
}

impl FfdMix {
    /// The version of the register whose hash is `h`.
    pub fn pick(&self, h: u64) -> FfdVersion {
        let total: u64 = self.weights.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut x = h % total.max(1);
        for (v, w) in &self.weights {
            if x < u64::from(*w) {
                return v.0;
            }
            x -= u64::from(*w);
        }
        self.weights.last().map_or(FfdVersion::V1_2, |(version, _)| version.0)
    }

    /// `1.05=20,1.1=10,1.2=70`.
    pub fn describe(&self) -> String {
        self.weights.iter().map(|(v, w)| format!("{}={w}", v.0.as_str())).collect::<Vec<_>>().join(",")
    }
}

/// One simulated register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterIdentity {
    /// Index in the population.
    pub index: u64,
    /// FN number.
    pub fn_number: FnNumber,
    /// Registration number with a valid check code.
    pub rnm: Rnm,
    /// Owner INN with valid control digits.
    pub owner_inn: Inn,
    /// KKT serial number.
    pub kkt_serial: String,
    /// Display name.
    pub name: String,
    /// Owner name as printed on documents (1048).
    pub owner_name: String,
    /// Address.
    pub address: String,
    /// Group (shop).
    pub group: String,
    /// FFD version of the register's FN.
    pub ffd: FfdVersion,
    /// Cashier (1021).
    pub cashier: String,
}

const CITIES: &[&str] = &[
    "г. Москва",
    "г. Санкт-Петербург",
    "г. Казань",
    "г. Новосибирск",
    "г. Екатеринбург",
    "г. Нижний Новгород",
    "г. Самара",
    "г. Ростов-на-Дону",
];
const STREETS: &[&str] =
    &["ул. Ленина", "пр. Мира", "ул. Садовая", "ул. Центральная", "ул. Школьная", "ул. Лесная", "Кутузовский пр."];
const SHOPS: &[&str] = &["Продукты", "Хозтовары", "Аптека", "Кафе", "АЗС", "Цветы", "Книги", "Пекарня"];
const CASHIERS: &[&str] = &["Иванова А.С.", "Петров И.И.", "Сидорова Е.В.", "Кузнецов Д.А.", "Смирнова О.Н."];

/// A valid 10-digit organisation INN from 9 leading digits.
pub fn inn10(first9: u64) -> String {
    const W: [u64; 9] = [2, 4, 10, 3, 5, 9, 4, 6, 8];
    let digits = format!("{:09}", first9 % 1_000_000_000);
    let sum: u64 = digits.bytes().zip(W).map(|(d, w)| u64::from(d - b'0') * w).sum();
    format!("{digits}{}", sum % 11 % 10)
}

impl RegisterIdentity {
    /// The register `index` of population `seed`.
    pub fn derive(seed: u64, index: u64, mix: &FfdMix) -> anyhow::Result<Self> {
        anyhow::ensure!(
            index <= MAX_INDEX,
            "register index {index} is beyond {MAX_INDEX} (7 digits of the RNM sequence)"
        );
        let block = seed % 1000;
        let fn_text = format!("9999{block:03}{index:09}");
        let fn_number = FnNumber::parse_strict(&fn_text).map_err(|e| anyhow::anyhow!("FN number {fn_text}: {e:?}"))?;
        let owner = index / REGISTERS_PER_OWNER;
        let till = index % REGISTERS_PER_OWNER + 1;
        let oh = hash3(seed, 1, owner);
        // region code 01..=89, then 7 digits: 9 digits before the control digit
        let region = 1 + oh % 89;
        let inn_text = inn10(region * 10_000_000 + (oh >> 8) % 10_000_000);
        let owner_inn =
            Inn::parse(&inn_text).map_err(|e| anyhow::anyhow!("generated INN {inn_text} is invalid: {e}"))?;
        let kkt_serial = format!("{block:03}{index:09}");
        let rnm = Rnm::compose(block * 10_000_000 + index, &owner_inn, &kkt_serial);
        let pick = |list: &[&str], h: u64| list[(h % list.len() as u64) as usize].to_owned();
        let shop = pick(SHOPS, oh >> 3);
        let owner_name = format!("ООО \"{shop} {owner}\"");
        let address = format!("{}, {}, д. {}", pick(CITIES, oh >> 11), pick(STREETS, oh >> 17), 1 + (oh >> 23) % 150);
        let rh = hash3(seed, 2, index);
        Ok(Self {
            index,
            fn_number,
            rnm,
            owner_inn,
            kkt_serial,
            name: format!("{shop} {owner}, касса {till}"),
            owner_name,
            address,
            group: format!("shop-{owner:07}"),
            ffd: mix.pick(rh),
            cashier: pick(CASHIERS, rh >> 9),
        })
    }

    /// The `ffd::build` identity the documents carry.
    pub fn identity(&self, ofd_inn: &str) -> Identity {
        Identity {
            fn_number: self.fn_number,
            rnm: self.rnm.as_str().to_owned(),
            user_inn: self.owner_inn.as_str().to_owned(),
            kkt_serial: self.kkt_serial.clone(),
            ofd_inn: ofd_inn.to_owned(),
            user_name: self.owner_name.clone(),
            address: self.address.clone(),
            place: format!("{}, касса {}", self.group, self.index % REGISTERS_PER_OWNER + 1),
            cashier: self.cashier.clone(),
            ffd: self.ffd,
        }
    }

    /// The record for the register import (CSV row or admin-API JSON), with the field
    /// names of `storage::model::Register`.
    pub fn import_row(&self, tariff: Option<&str>, paid_until: Option<&str>) -> ImportRow {
        ImportRow {
            rnm: self.rnm.as_str().to_owned(),
            kkt_serial: self.kkt_serial.clone(),
            owner_inn: self.owner_inn.as_str().to_owned(),
            name: self.name.clone(),
            address: self.address.clone(),
            group: Some(self.group.clone()),
            fn_number: self.fn_number.to_string(),
            tariff: tariff.map(str::to_owned),
            paid_until: paid_until.map(str::to_owned),
        }
    }
}

/// One register to import. The CSV header is these field names in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ImportRow {
    /// RNM.
    pub rnm: String,
    /// KKT serial.
    pub kkt_serial: String,
    /// Owner INN.
    pub owner_inn: String,
    /// Display name.
    pub name: String,
    /// Address.
    pub address: String,
    /// Group (empty cell / null when absent).
    pub group: Option<String>,
    /// FN number.
    pub fn_number: String,
    /// Tariff plan (empty cell / null when absent).
    pub tariff: Option<String>,
    /// End of the paid period, RFC 3339 (empty cell / null when absent).
    pub paid_until: Option<String>,
}

/// The CSV header `adminctl registers import` expects.
pub const CSV_HEADER: &str = "rnm,kkt_serial,owner_inn,name,address,group,fn_number,tariff,paid_until";

/// A slice of a population.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Population {
    /// Seed.
    pub seed: u64,
    /// First register index.
    pub first: u64,
    /// Number of registers.
    pub count: u64,
    /// FFD versions.
    pub mix: FfdMix,
}

impl Population {
    /// Checks the index range.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.count > 0, "--count must be at least 1");
        let last = self.first.checked_add(self.count - 1).filter(|l| *l <= MAX_INDEX).ok_or_else(|| {
            anyhow::anyhow!(
                "registers {}..{} go beyond index {MAX_INDEX}",
                self.first,
                self.first.saturating_add(self.count)
            )
        })?;
        let _ = last;
        Ok(())
    }

    /// The registers, in index order.
    pub fn iter(&self) -> impl Iterator<Item = anyhow::Result<RegisterIdentity>> + '_ {
        (self.first..self.first + self.count).map(|i| RegisterIdentity::derive(self.seed, i, &self.mix))
    }
}

/// Writes the population as CSV for `adminctl registers import`.
pub fn write_csv(
    out: impl Write,
    population: &Population,
    tariff: Option<&str>,
    paid_until: Option<&str>,
) -> anyhow::Result<u64> {
    population.validate()?;
    let mut w = csv::Writer::from_writer(out);
    let mut n = 0;
    for reg in population.iter() {
        w.serialize(reg?.import_row(tariff, paid_until))?;
        n += 1;
    }
    w.flush()?;
    Ok(n)
}

/// [`write_csv`] into a file.
pub fn write_csv_file(
    path: &Path,
    population: &Population,
    tariff: Option<&str>,
    paid_until: Option<&str>,
) -> anyhow::Result<u64> {
    let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut buf = std::io::BufWriter::new(f);
    let n = write_csv(&mut buf, population, tariff, paid_until)?;
    buf.flush().with_context(|| format!("writing {}", path.display()))?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_valid_reproducible_and_disjoint() {
        let mix = FfdMix::default();
        let a = RegisterIdentity::derive(7, 12, &mix).expect("derive");
        let b = RegisterIdentity::derive(7, 12, &mix).expect("derive");
        assert_eq!(a, b);
        assert_eq!(a.fn_number.to_string(), "9999007000000012");
        assert!(a.rnm.verify(&a.owner_inn, &a.kkt_serial).is_ok());
        assert!(Inn::parse(a.owner_inn.as_str()).is_ok());
        let c = RegisterIdentity::derive(7, 13, &mix).expect("derive");
        assert_ne!(a.fn_number, c.fn_number);
        assert_ne!(a.rnm, c.rnm);
        // same owner for a till group
        let d = RegisterIdentity::derive(7, 13, &mix).expect("derive");
        assert_eq!(c.owner_inn, d.owner_inn);
        assert!(RegisterIdentity::derive(7, MAX_INDEX + 1, &mix).is_err());
    }

    #[test]
    fn inn_control_digit() {
        // 7707083893 is a well-known valid INN
        assert_eq!(inn10(770_708_389), "7707083893");
        for x in [0, 1, 123_456_789, 999_999_999] {
            assert!(Inn::parse(&inn10(x)).is_ok());
        }
    }

    #[test]
    fn mix_parses_and_spreads() {
        let m: FfdMix = "1.05=1,1.2=1".parse().expect("mix");
        let mut seen = [0u32; 4];
        for i in 0..1000 {
            seen[m.pick(mix64(i)) as usize] += 1;
        }
        assert!(seen[FfdVersion::V1_05 as usize] > 400 && seen[FfdVersion::V1_2 as usize] > 400);
        assert_eq!(seen[FfdVersion::V1_1 as usize], 0);
        assert!("1.3=5".parse::<FfdMix>().is_err());
        assert!("1.2=0".parse::<FfdMix>().is_err());
        assert_eq!(FfdMix::default().describe(), "1.05=20,1.1=10,1.2=70");
    }

    #[test]
    fn csv_has_the_import_header() {
        let p = Population { seed: 1, first: 0, count: 3, mix: FfdMix::default() };
        let mut out = Vec::new();
        let n = write_csv(&mut out, &p, None, Some("2030-01-01T00:00:00Z")).expect("csv");
        assert_eq!(n, 3);
        let text = String::from_utf8(out).expect("utf8");
        assert_eq!(text.lines().next(), Some(CSV_HEADER));
        assert_eq!(text.lines().count(), 4);
        assert!(text.lines().nth(1).is_some_and(|l| l.contains(",,2030-01-01T00:00:00Z")));
    }
}
