//! Registers, the FN index, activity and the onboarding backlog.

use std::collections::{HashMap, HashSet};
use std::ops::Bound;

use ffd::FnNumber;

use super::documents::scan_page;
use super::writer::Tx;
use super::{EmbeddedStore, Engine, Ks, codec, fj, keys};
use crate::error::StoreError;
use crate::ids::{Rnm, Timestamp};
use crate::model::{Register, RegisterActivity, UnknownFn, UnknownFnSighting};
use crate::store::{Page, PageRequest, RegisterFilter, RegisterStore};

/// Most registers one `put_registers` call may carry (it is one batch).
const MAX_PUT: usize = 100_000;

fn read_register(eng: &Engine, rnm: &Rnm) -> Result<Option<Register>, StoreError> {
    match eng.ks(Ks::Registers).get(keys::rnm(rnm)).map_err(fj("get register"))? {
        Some(v) => Ok(Some(codec::from_json("register", &v)?)),
        None => Ok(None),
    }
}

fn tx_register(tx: &Tx<'_>, rnm: &Rnm) -> Result<Option<Register>, StoreError> {
    match tx.get(Ks::Registers, &keys::rnm(rnm))? {
        Some(v) => Ok(Some(codec::from_json("register", &v)?)),
        None => Ok(None),
    }
}

/// Validates and stages a `put_registers` call; every check runs before anything is
/// staged, and the writer drops the staged layer if anything fails, so the call is
/// all-or-nothing.
fn stage_put(tx: &mut Tx<'_>, registers: Vec<Register>, expected: Vec<Option<u64>>) -> Result<(), StoreError> {
    if expected.len() > registers.len() {
        return Err(StoreError::Invalid(format!(
            "{} expected versions for {} registers",
            expected.len(),
            registers.len()
        )));
    }
    if registers.len() > MAX_PUT {
        return Err(StoreError::Invalid(format!("at most {MAX_PUT} registers per call, got {}", registers.len())));
    }
    // Who claims which FN in this call; RNMs must be unique in the call.
    let mut claims: HashMap<FnNumber, Rnm> = HashMap::new();
    let mut in_call: HashSet<Rnm> = HashSet::new();
    for r in &registers {
        if !in_call.insert(r.rnm.clone()) {
            return Err(StoreError::Invalid(format!("register {} appears twice in one call", r.rnm)));
        }
        for f in r.all_fns() {
            if let Some(other) = claims.insert(*f, r.rnm.clone())
                && other != r.rnm
            {
                return Err(StoreError::Conflict(format!("FN {f} is claimed by both {other} and {}", r.rnm)));
            }
        }
    }
    let mut old: Vec<Option<Register>> = Vec::with_capacity(registers.len());
    for (i, r) in registers.iter().enumerate() {
        let stored = tx_register(tx, &r.rnm)?;
        if let Some(want) = expected.get(i).copied().flatten() {
            match &stored {
                None if want == 0 => {}
                Some(s) if want == 0 => {
                    return Err(StoreError::Conflict(format!(
                        "register {} already exists (version {})",
                        r.rnm, s.version
                    )));
                }
                Some(s) if s.version == want => {}
                Some(s) => {
                    return Err(StoreError::Conflict(format!(
                        "register {}: expected version {want}, stored version is {}",
                        r.rnm, s.version
                    )));
                }
                None => {
                    return Err(StoreError::Conflict(format!(
                        "register {}: expected version {want}, but it does not exist",
                        r.rnm
                    )));
                }
            }
        }
        for f in r.all_fns() {
            if let Some(owner) = tx.get(Ks::FnIndex, f.as_bytes())? {
                let owner = keys::rnm_decode(&owner)?;
                // Another register owning it is a clash, unless that register is in
                // this call and gives the FN up.
                if owner != r.rnm && !in_call.contains(&owner) {
                    return Err(StoreError::Conflict(format!("FN {f} belongs to register {owner}")));
                }
            }
        }
        old.push(stored);
    }
    // Stage: first drop index entries the new versions no longer have, then write.
    for o in old.iter().flatten() {
        for f in o.all_fns() {
            if !claims.contains_key(f) {
                tx.del(Ks::FnIndex, f.as_bytes().to_vec());
            }
        }
        tx.del(Ks::RegUpdated, keys::reg_updated(o.updated_at, &o.rnm));
    }
    for r in &registers {
        for f in r.all_fns() {
            tx.put(Ks::FnIndex, f.as_bytes().to_vec(), keys::rnm(&r.rnm).to_vec());
        }
        tx.put(Ks::RegUpdated, keys::reg_updated(r.updated_at, &r.rnm), Vec::new());
        tx.put(Ks::Registers, keys::rnm(&r.rnm).to_vec(), codec::to_json(r)?);
    }
    Ok(())
}

fn stage_sightings(tx: &mut Tx<'_>, sightings: Vec<UnknownFnSighting>) -> Result<(), StoreError> {
    let mut merged: HashMap<FnNumber, UnknownFn> = HashMap::new();
    for s in sightings {
        let entry = match merged.remove(&s.fn_number) {
            Some(e) => Some(e),
            None => match tx.get(Ks::UnknownFns, s.fn_number.as_bytes())? {
                Some(v) => Some(codec::from_json::<UnknownFn>("unknown FN", &v)?),
                None => None,
            },
        };
        let u = match entry {
            None => UnknownFn {
                fn_number: s.fn_number,
                first_seen: s.at,
                last_seen: s.at,
                attempts: s.attempts,
                claimed_rnm: s.claimed_rnm,
                claimed_inn: s.claimed_inn,
                last_peer: s.peer,
            },
            Some(mut u) => {
                u.attempts = u.attempts.saturating_add(s.attempts);
                u.first_seen = u.first_seen.min(s.at);
                if s.at >= u.last_seen {
                    u.last_seen = s.at;
                    u.last_peer = s.peer.or(u.last_peer);
                    u.claimed_rnm = s.claimed_rnm.or(u.claimed_rnm);
                    u.claimed_inn = s.claimed_inn.or(u.claimed_inn);
                } else {
                    u.last_peer = u.last_peer.or(s.peer);
                    u.claimed_rnm = u.claimed_rnm.or(s.claimed_rnm);
                    u.claimed_inn = u.claimed_inn.or(s.claimed_inn);
                }
                u
            }
        };
        merged.insert(u.fn_number, u);
    }
    for (f, u) in merged {
        tx.put(Ks::UnknownFns, f.as_bytes().to_vec(), codec::to_json(&u)?);
    }
    Ok(())
}

#[async_trait::async_trait]
impl RegisterStore for EmbeddedStore {
    async fn put_registers(
        &self,
        registers: Vec<Register>,
        expected_versions: Vec<Option<u64>>,
    ) -> Result<(), StoreError> {
        if registers.is_empty() {
            return Ok(());
        }
        self.mutate(move |tx| stage_put(tx, registers, expected_versions)).await
    }

    async fn get_register(&self, rnm: &Rnm) -> Result<Option<Register>, StoreError> {
        let rnm = rnm.clone();
        self.read(move |eng| read_register(eng, &rnm)).await
    }

    async fn register_by_fn(&self, fn_number: &FnNumber) -> Result<Option<Register>, StoreError> {
        let f = *fn_number;
        self.read(move |eng| match eng.ks(Ks::FnIndex).get(f.as_bytes()).map_err(fj("get FN index"))? {
            Some(owner) => read_register(eng, &keys::rnm_decode(&owner)?),
            None => Ok(None),
        })
        .await
    }

    async fn list_registers(&self, filter: &RegisterFilter, page: PageRequest) -> Result<Page<Register>, StoreError> {
        let filter = filter.clone();
        self.read(move |eng| {
            scan_page(eng.ks(Ks::Registers), Bound::Unbounded, Bound::Unbounded, false, &page, |_, v| {
                let r: Register = codec::from_json("register", v)?;
                Ok(filter.matches(&r).then_some(r))
            })
        })
        .await
    }

    async fn registers_updated_since(&self, since: Timestamp, page: PageRequest) -> Result<Page<Register>, StoreError> {
        self.read(move |eng| {
            scan_page(
                eng.ks(Ks::RegUpdated),
                Bound::Included(keys::ts(since).to_vec()),
                Bound::Unbounded,
                false,
                &page,
                |k, _| {
                    let rnm = keys::rnm_decode(k.get(8..).unwrap_or_default())?;
                    match read_register(eng, &rnm)? {
                        Some(r) => Ok(Some(r)),
                        None => Err(StoreError::Corrupt(format!("update index names register {rnm} which is missing"))),
                    }
                },
            )
        })
        .await
    }

    async fn get_activity(&self, rnm: &Rnm) -> Result<Option<RegisterActivity>, StoreError> {
        let rnm = rnm.clone();
        self.read(move |eng| match eng.ks(Ks::Activity).get(keys::rnm(&rnm)).map_err(fj("get activity"))? {
            Some(v) => Ok(Some(codec::decode_activity(&v)?)),
            None => Ok(None),
        })
        .await
    }

    async fn get_activities(&self, rnms: &[Rnm]) -> Result<Vec<(Rnm, RegisterActivity)>, StoreError> {
        let rnms = rnms.to_vec();
        self.read(move |eng| {
            let mut out = Vec::with_capacity(rnms.len());
            for rnm in rnms {
                if let Some(v) = eng.ks(Ks::Activity).get(keys::rnm(&rnm)).map_err(fj("get activity"))? {
                    out.push((rnm, codec::decode_activity(&v)?));
                }
            }
            Ok(out)
        })
        .await
    }

    async fn record_unknown_fns(&self, sightings: Vec<UnknownFnSighting>) -> Result<(), StoreError> {
        if sightings.is_empty() {
            return Ok(());
        }
        self.mutate(move |tx| stage_sightings(tx, sightings)).await
    }

    async fn list_unknown_fns(&self, page: PageRequest) -> Result<Page<UnknownFn>, StoreError> {
        self.read(move |eng| {
            scan_page(eng.ks(Ks::UnknownFns), Bound::Unbounded, Bound::Unbounded, false, &page, |_, v| {
                Ok(Some(codec::from_json("unknown FN", v)?))
            })
        })
        .await
    }

    async fn remove_unknown_fn(&self, fn_number: &FnNumber) -> Result<(), StoreError> {
        let f = *fn_number;
        self.mutate(move |tx| {
            tx.del(Ks::UnknownFns, f.as_bytes().to_vec());
            Ok(())
        })
        .await
    }
}
