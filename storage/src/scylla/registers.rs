//! `RegisterStore`: registers and their indexes, activity, the onboarding backlog.
//!
//! Register changes are admin actions (rare, human-paced). `put_registers` reads
//! everything it checks (versions, FN owners) at the configured consistency, refuses the
//! whole call on any conflict, then writes each register and its index rows in one
//! logged batch (all or nothing per register). Residual risk, documented in
//! docs/scylla.md: two admin calls racing on the same register or FN between the check
//! and the write both pass (no LWT here: LWT is reserved for leases); the later write
//! wins by timestamp.

use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;
use ffd::FnNumber;
use futures::{StreamExt, TryStreamExt, stream};
use scylla::serialize::row::SerializeRow;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::CqlTimestamp;

use super::keys::{self, Cursor, SHARDS, day_of, fn_prefix, fn_text, rnm_bucket, shard_of};
use super::rows::{from_json, from_ts, to_json, ts};
use super::store::{OpTimer, ScyllaStore, ordered, unordered};
use crate::error::StoreError;
use crate::ids::{Rnm, Timestamp};
use crate::model::{Register, RegisterActivity, UnknownFn, UnknownFnSighting};
use crate::store::{Page, PageRequest, RegisterFilter, RegisterStore};

/// Rows a filtered listing examines before it returns what it has with a cursor.
const SCAN_BUDGET: usize = 50_000;

/// Point reads in flight at once for admin-path fan-outs.
const FAN_OUT: usize = 32;

pub(super) type UnknownRow =
    (String, Option<CqlTimestamp>, Option<CqlTimestamp>, Option<i64>, Option<String>, Option<String>, Option<String>);

impl ScyllaStore {
    /// The activity of a register: the merge of its rows, one per FN (each folded by the
    /// deriver of that FN's journal partition).
    async fn merged_activity(&self, rnm: &Rnm) -> Result<Option<RegisterActivity>, StoreError> {
        let rows = self.read_activity_rows(rnm.as_str()).await?;
        let mut it = rows.into_iter().map(|(_, a)| a.activity);
        let Some(mut first) = it.next() else { return Ok(None) };
        for a in it {
            first.merge(&a);
        }
        Ok(Some(first))
    }

    pub(super) async fn read_register(&self, rnm: &Rnm) -> Result<Option<Register>, StoreError> {
        let row: Option<(Option<String>,)> = self.one(&self.st.reg_get, (rnm_bucket(rnm), rnm.as_str())).await?;
        match row {
            Some((Some(body),)) => Ok(Some(from_json(&format!("register {rnm}"), &body)?)),
            _ => Ok(None),
        }
    }

    async fn read_registers(&self, rnms: Vec<Rnm>) -> Result<HashMap<Rnm, Register>, StoreError> {
        let futs: Vec<_> = rnms
            .into_iter()
            .map(|r| async move {
                let reg = self.read_register(&r).await?;
                Ok::<_, StoreError>((r, reg))
            })
            .collect();
        let found: Vec<(Rnm, Option<Register>)> = unordered(futs, FAN_OUT).await?;
        Ok(found.into_iter().filter_map(|(r, reg)| reg.map(|g| (r, g))).collect())
    }

    async fn fn_owner(&self, fn_text: &str) -> Result<Option<Rnm>, StoreError> {
        let row: Option<(Option<String>,)> = self.one(&self.st.fn_get, (fn_text,)).await?;
        match row {
            Some((Some(r),)) => {
                Rnm::parse(&r).map(Some).map_err(|e| StoreError::Corrupt(format!("FN index of {fn_text}: {e}")))
            }
            _ => Ok(None),
        }
    }

    /// One register and its index rows, all or nothing.
    async fn write_register(
        &self,
        reg: &Register,
        old: Option<&Register>,
        fns_to_drop: &[String],
    ) -> Result<(), StoreError> {
        let bucket = rnm_bucket(&reg.rnm);
        let rnm = reg.rnm.as_str();
        let day = day_of(reg.updated_at);
        let shard = shard_of(rnm.as_bytes(), SHARDS);
        // directories first: a listing must never miss a register that exists
        self.dir_text("registers", "", &bucket).await?;
        self.dir_int("reg_updates", "", i64::from(day), 0).await?;

        let body = to_json(reg)?;
        let version = i64::try_from(reg.version)
            .map_err(|_| StoreError::Invalid(format!("version {} too large", reg.version)))?;
        let mut stmts: Vec<&PreparedStatement> = Vec::new();
        let mut values: Vec<Box<dyn SerializeRow + Send + Sync + '_>> = Vec::new();
        stmts.push(&self.st.reg_insert);
        values.push(Box::new((bucket.clone(), rnm.to_owned(), body, version, ts(reg.updated_at))));
        for f in reg.all_fns() {
            stmts.push(&self.st.fn_insert);
            values.push(Box::new((fn_text(f)?, rnm.to_owned())));
        }
        for f in fns_to_drop {
            stmts.push(&self.st.fn_delete);
            values.push(Box::new((f.clone(),)));
        }
        stmts.push(&self.st.owner_insert);
        values.push(Box::new((reg.owner_inn.as_str().to_owned(), rnm.to_owned())));
        if let Some(old) = old
            && old.owner_inn != reg.owner_inn
        {
            stmts.push(&self.st.owner_delete);
            values.push(Box::new((old.owner_inn.as_str().to_owned(), rnm.to_owned())));
        }
        stmts.push(&self.st.upd_insert);
        values.push(Box::new((day, shard, ts(reg.updated_at), rnm.to_owned())));
        self.logged_batch(stmts, values).await
    }

    async fn put_registers_impl(
        &self,
        registers: Vec<Register>,
        expected_versions: Vec<Option<u64>>,
    ) -> Result<(), StoreError> {
        if expected_versions.len() > registers.len() {
            return Err(StoreError::Invalid(format!(
                "{} expected versions for {} registers",
                expected_versions.len(),
                registers.len()
            )));
        }
        // Within the call: one entry per register, one register per FN.
        let mut seen = HashSet::new();
        let mut claims: HashMap<String, &Rnm> = HashMap::new();
        for r in &registers {
            if !seen.insert(r.rnm.clone()) {
                return Err(StoreError::Invalid(format!("register {} appears twice in one call", r.rnm)));
            }
            for f in r.all_fns() {
                let t = fn_text(f)?;
                if let Some(other) = claims.insert(t.clone(), &r.rnm)
                    && *other != r.rnm
                {
                    return Err(StoreError::Conflict(format!(
                        "FN {} is claimed by registers {other} and {} in the same call",
                        f, r.rnm
                    )));
                }
            }
        }

        // Read what the checks need.
        let current = self.read_registers(registers.iter().map(|r| r.rnm.clone()).collect()).await?;
        for (i, r) in registers.iter().enumerate() {
            let expected = expected_versions.get(i).copied().flatten();
            if let Some(v) = expected {
                match current.get(&r.rnm) {
                    None if v == 0 => {}
                    Some(cur) if v == 0 => {
                        return Err(StoreError::Conflict(format!(
                            "register {} already exists (version {})",
                            r.rnm, cur.version
                        )));
                    }
                    Some(cur) if cur.version == v => {}
                    Some(cur) => {
                        return Err(StoreError::Conflict(format!(
                            "register {} is at version {}, expected {v}",
                            r.rnm, cur.version
                        )));
                    }
                    None => {
                        return Err(StoreError::Conflict(format!(
                            "register {} does not exist (expected version {v})",
                            r.rnm
                        )));
                    }
                }
            }
        }
        // FNs dropped from a register (present before, absent now, claimed by nobody in
        // this call) lose their index row if it still points at that register.
        let mut dropped: HashMap<&Rnm, Vec<String>> = HashMap::new();
        for r in &registers {
            if let Some(old) = current.get(&r.rnm) {
                for f in old.all_fns() {
                    let t = fn_text(f)?;
                    if !claims.contains_key(&t) {
                        dropped.entry(&r.rnm).or_default().push(t);
                    }
                }
            }
        }
        let all_fns: Vec<String> = claims.keys().cloned().chain(dropped.values().flatten().cloned()).collect();
        let owners: HashMap<String, Option<Rnm>> = stream::iter(all_fns.into_iter().map(|t| async move {
            let o = self.fn_owner(&t).await?;
            Ok::<_, StoreError>((t, o))
        }))
        .buffer_unordered(FAN_OUT)
        .try_collect()
        .await?;
        // Owners outside this call: do they still list the FN?
        let outside: Vec<Rnm> = owners
            .values()
            .flatten()
            .filter(|o| !seen.contains(*o))
            .cloned()
            .collect::<HashSet<Rnm>>()
            .into_iter()
            .collect();
        let outside = self.read_registers(outside).await?;
        for (t, claimant) in &claims {
            if let Some(Some(owner)) = owners.get(t)
                && owner != *claimant
                && !seen.contains(owner)
                && outside.get(owner).is_some_and(|o| o.all_fns().any(|f| fn_text(f).ok().as_deref() == Some(t)))
            {
                return Err(StoreError::Conflict(format!("FN {} belongs to register {owner}", t.trim_end())));
            }
        }

        for r in &registers {
            let drop: Vec<String> = dropped
                .get(&r.rnm)
                .map(|v| {
                    v.iter().filter(|t| owners.get(*t).and_then(|o| o.as_ref()) == Some(&r.rnm)).cloned().collect()
                })
                .unwrap_or_default();
            self.write_register(r, current.get(&r.rnm), &drop).await?;
        }
        Ok(())
    }

    /// Registers in RNM order after `after`, from one listing source, passing `filter`.
    async fn list_registers_impl(
        &self,
        filter: &RegisterFilter,
        page: PageRequest,
    ) -> Result<Page<Register>, StoreError> {
        let limit = page.effective_limit();
        let after = Cursor::decode_as(page.cursor.as_deref(), |c| match c {
            Cursor::Registers { rnm } => Some(rnm),
            _ => None,
        })?
        .unwrap_or_default();
        let mut items: Vec<Register> = Vec::new();
        let mut examined = 0usize;
        let mut last = after.clone();
        let mut more = false;

        if let Some(owner) = &filter.owner_inn {
            // the owner index is in RNM order: fetch and filter
            let mut s = self.stream::<(String,)>(&self.st.owner_after, (owner.as_str(), after.as_str())).await?;
            'owner: loop {
                let mut batch = Vec::new();
                while batch.len() < FAN_OUT {
                    match self.next_row(&mut s).await? {
                        Some((r,)) => batch.push(r),
                        None => break,
                    }
                }
                if batch.is_empty() {
                    break;
                }
                let regs: Vec<(String, Option<Register>)> = stream::iter(batch.into_iter().map(|r| async move {
                    let rnm = Rnm::parse(&r).map_err(|e| StoreError::Corrupt(format!("owner index: {e}")))?;
                    Ok::<_, StoreError>((r, self.read_register(&rnm).await?))
                }))
                .buffered(FAN_OUT)
                .try_collect()
                .await?;
                for (r, reg) in regs {
                    examined += 1;
                    last = r;
                    if let Some(reg) = reg
                        && reg.owner_inn == *owner
                        && filter.matches(&reg)
                    {
                        if items.len() == limit {
                            more = true;
                            break 'owner;
                        }
                        items.push(reg);
                    }
                    if examined >= SCAN_BUDGET {
                        break 'owner;
                    }
                }
            }
        } else {
            let start_bucket: String = after.chars().take(keys::RNM_PREFIX).collect();
            let buckets = self.dir_text_from("registers", "", &start_bucket).await?;
            'buckets: for b in buckets {
                let from = if b == start_bucket { after.as_str() } else { "" };
                let mut s = self.stream::<(String, Option<String>)>(&self.st.reg_after, (b.as_str(), from)).await?;
                while let Some((r, body)) = self.next_row(&mut s).await? {
                    examined += 1;
                    let Some(body) = body else { continue };
                    let reg: Register = from_json(&format!("register {r}"), &body)?;
                    if filter.matches(&reg) {
                        if items.len() == limit {
                            more = true;
                            break 'buckets;
                        }
                        items.push(reg);
                    }
                    last = r;
                    if examined >= SCAN_BUDGET {
                        break 'buckets;
                    }
                }
            }
        }
        let next = if more {
            items.last().map(|r| Cursor::Registers { rnm: r.rnm.as_str().to_owned() }.encode())
        } else if examined >= SCAN_BUDGET {
            Some(Cursor::Registers { rnm: last }.encode())
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn updated_since_impl(&self, since: Timestamp, page: PageRequest) -> Result<Page<Register>, StoreError> {
        let limit = page.effective_limit();
        let after = Cursor::decode_as(page.cursor.as_deref(), |c| match c {
            Cursor::RegUpdates { day, shard, at, rnm } => Some((day, shard, at, rnm)),
            _ => None,
        })?;
        let first_day = after.as_ref().map_or(day_of(since), |(d, _, _, _)| *d).max(day_of(since));
        let days = self.dir_int_range("reg_updates", "", i64::from(first_day), i64::MAX, false).await?;
        let mut items: Vec<Register> = Vec::new();
        let mut examined = 0usize;
        let mut pos: Option<(i32, i32, i64, String)> = after.clone();
        let mut more = false;
        'days: for day in days {
            let day = i32::try_from(day).map_err(|_| StoreError::Corrupt(format!("day {day} out of range")))?;
            for shard in 0..i32::from(SHARDS) {
                // start strictly after the cursor in its own (day, shard), else at `since`
                let (at, rnm) = match &after {
                    Some((d, s, _, _)) if (day, shard) < (*d, *s) => continue,
                    Some((d, s, at, r)) if (day, shard) == (*d, *s) => (*at, format!("{r}\0")),
                    _ => (since.millis(), String::new()),
                };
                let at = at.max(since.millis());
                let mut s = self
                    .stream::<(CqlTimestamp, String)>(&self.st.upd_after, (day, shard, CqlTimestamp(at), rnm.as_str()))
                    .await?;
                while let Some((t, r)) = self.next_row(&mut s).await? {
                    examined += 1;
                    let rnm = Rnm::parse(&r).map_err(|e| StoreError::Corrupt(format!("change log: {e}")))?;
                    // only the row of the register's current version counts
                    if let Some(reg) = self.read_register(&rnm).await?
                        && reg.updated_at.millis() == t.0
                        && reg.updated_at >= since
                    {
                        if items.len() == limit {
                            more = true;
                            break 'days;
                        }
                        items.push(reg);
                    }
                    pos = Some((day, shard, t.0, r));
                    if examined >= SCAN_BUDGET {
                        break 'days;
                    }
                }
            }
        }
        let next = if more || examined >= SCAN_BUDGET {
            pos.map(|(day, shard, at, rnm)| Cursor::RegUpdates { day, shard, at, rnm }.encode())
        } else {
            None
        };
        Ok(Page { items, next })
    }
}

#[async_trait]
impl RegisterStore for ScyllaStore {
    async fn put_registers(
        &self,
        registers: Vec<Register>,
        expected_versions: Vec<Option<u64>>,
    ) -> Result<(), StoreError> {
        let _t = OpTimer::start("put_registers");
        self.put_registers_impl(registers, expected_versions).await
    }

    async fn get_register(&self, rnm: &Rnm) -> Result<Option<Register>, StoreError> {
        let _t = OpTimer::start("get_register");
        self.read_register(rnm).await
    }

    async fn register_by_fn(&self, fn_number: &FnNumber) -> Result<Option<Register>, StoreError> {
        let _t = OpTimer::start("register_by_fn");
        let t = fn_text(fn_number)?;
        let Some(owner) = self.fn_owner(&t).await? else {
            return Ok(None);
        };
        // The index is maintained with the register, but trust the register itself: an
        // FN it no longer lists is not its FN.
        Ok(self.read_register(&owner).await?.filter(|r| r.all_fns().any(|f| f == fn_number)))
    }

    async fn list_registers(&self, filter: &RegisterFilter, page: PageRequest) -> Result<Page<Register>, StoreError> {
        let _t = OpTimer::start("list_registers");
        self.list_registers_impl(filter, page).await
    }

    async fn registers_updated_since(&self, since: Timestamp, page: PageRequest) -> Result<Page<Register>, StoreError> {
        let _t = OpTimer::start("registers_updated_since");
        self.updated_since_impl(since, page).await
    }

    async fn get_activity(&self, rnm: &Rnm) -> Result<Option<RegisterActivity>, StoreError> {
        let _t = OpTimer::start("get_activity");
        self.merged_activity(rnm).await
    }

    async fn get_activities(&self, rnms: &[Rnm]) -> Result<Vec<(Rnm, RegisterActivity)>, StoreError> {
        let _t = OpTimer::start("get_activities");
        let futs: Vec<_> = rnms
            .iter()
            .map(|r| async move { Ok::<_, StoreError>(self.merged_activity(r).await?.map(|a| (r.clone(), a))) })
            .collect();
        let found: Vec<Option<(Rnm, RegisterActivity)>> = ordered(futs, FAN_OUT).await?;
        Ok(found.into_iter().flatten().collect())
    }

    /// Aggregates the sightings per FN, then read-modify-writes each FN's row. Two nodes
    /// recording the same FN at the same moment may lose one's attempt count (no
    /// counters: they are not idempotent); the backlog is informational.
    async fn record_unknown_fns(&self, sightings: Vec<UnknownFnSighting>) -> Result<(), StoreError> {
        let _t = OpTimer::start("record_unknown_fns");
        let mut agg: BTreeMap<String, UnknownFn> = BTreeMap::new();
        for s in sightings {
            let key = fn_text(&s.fn_number)?;
            let e = agg.entry(key).or_insert_with(|| UnknownFn {
                fn_number: s.fn_number,
                first_seen: s.at,
                last_seen: s.at,
                attempts: 0,
                claimed_rnm: None,
                claimed_inn: None,
                last_peer: None,
            });
            merge_sighting(e, &s);
        }
        stream::iter(agg.into_iter().map(|(t, new)| async move {
            let prefix = fn_prefix(&t);
            self.dir_text("unknown_fns", "", &prefix).await?;
            let old: Option<UnknownRow> = self
                .one(&self.st.unk_get, (prefix.as_str(), t.as_str()))
                .await
                .map(|r: Option<UnknownRowNoFn>| r.map(|r| with_fn(t.clone(), r)))?;
            let merged = match old {
                Some(row) => {
                    let mut cur = unknown_from_row(row)?;
                    merge_unknown(&mut cur, &new);
                    cur
                }
                None => new,
            };
            let attempts = i64::try_from(merged.attempts).unwrap_or(i64::MAX);
            self.write(
                &self.st.unk_put,
                (
                    prefix.as_str(),
                    t.as_str(),
                    ts(merged.first_seen),
                    ts(merged.last_seen),
                    attempts,
                    merged.claimed_rnm.as_deref(),
                    merged.claimed_inn.as_deref(),
                    merged.last_peer.as_deref(),
                ),
            )
            .await
        }))
        .buffer_unordered(FAN_OUT)
        .try_collect::<Vec<()>>()
        .await?;
        Ok(())
    }

    async fn list_unknown_fns(&self, page: PageRequest) -> Result<Page<UnknownFn>, StoreError> {
        let _t = OpTimer::start("list_unknown_fns");
        let limit = page.effective_limit();
        let after = Cursor::decode_as(page.cursor.as_deref(), |c| match c {
            Cursor::UnknownFns { fn_text } => Some(fn_text),
            _ => None,
        })?
        .unwrap_or_default();
        let start = fn_prefix(&after);
        let prefixes = self.dir_text_from("unknown_fns", "", &start).await?;
        let mut items = Vec::new();
        let mut more = false;
        'p: for p in prefixes {
            let from = if p == start { after.as_str() } else { "" };
            let mut s = self.stream::<UnknownRow>(&self.st.unk_after, (p.as_str(), from)).await?;
            while let Some(row) = self.next_row(&mut s).await? {
                if items.len() == limit {
                    more = true;
                    break 'p;
                }
                items.push(unknown_from_row(row)?);
            }
        }
        let next = if more {
            match items.last() {
                Some(u) => Some(Cursor::UnknownFns { fn_text: fn_text(&u.fn_number)? }.encode()),
                None => None,
            }
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn remove_unknown_fn(&self, fn_number: &FnNumber) -> Result<(), StoreError> {
        let _t = OpTimer::start("remove_unknown_fn");
        let t = fn_text(fn_number)?;
        self.write(&self.st.unk_delete, (fn_prefix(&t), t.as_str())).await
    }
}

pub(super) type UnknownRowNoFn =
    (Option<CqlTimestamp>, Option<CqlTimestamp>, Option<i64>, Option<String>, Option<String>, Option<String>);

fn with_fn(f: String, r: UnknownRowNoFn) -> UnknownRow {
    (f, r.0, r.1, r.2, r.3, r.4, r.5)
}

fn unknown_from_row(row: UnknownRow) -> Result<UnknownFn, StoreError> {
    let (f, first, last, attempts, rnm, inn, peer) = row;
    let fn_number = keys::fn_from_text(&f)?;
    let what = |c: &str| format!("unknown FN {}: {c}", f.trim_end());
    let first = from_ts(first.ok_or_else(|| StoreError::Corrupt(what("first_seen")))?);
    Ok(UnknownFn {
        fn_number,
        first_seen: first,
        last_seen: last.map(from_ts).unwrap_or(first),
        attempts: u64::try_from(attempts.unwrap_or(0)).unwrap_or(0),
        claimed_rnm: rnm,
        claimed_inn: inn,
        last_peer: peer,
    })
}

/// Folds one sighting into an aggregate (what `record_unknown_fns` does per FN).
pub(super) fn merge_sighting(e: &mut UnknownFn, s: &UnknownFnSighting) {
    let newer = s.at >= e.last_seen;
    e.first_seen = e.first_seen.min(s.at);
    e.last_seen = e.last_seen.max(s.at);
    e.attempts = e.attempts.saturating_add(s.attempts);
    if newer || e.claimed_rnm.is_none() {
        e.claimed_rnm = s.claimed_rnm.clone().or(e.claimed_rnm.take());
    }
    if newer || e.claimed_inn.is_none() {
        e.claimed_inn = s.claimed_inn.clone().or(e.claimed_inn.take());
    }
    if newer || e.last_peer.is_none() {
        e.last_peer = s.peer.clone().or(e.last_peer.take());
    }
}

/// Folds a new aggregate into the stored one.
fn merge_unknown(cur: &mut UnknownFn, new: &UnknownFn) {
    let newer = new.last_seen >= cur.last_seen;
    cur.first_seen = cur.first_seen.min(new.first_seen);
    cur.last_seen = cur.last_seen.max(new.last_seen);
    cur.attempts = cur.attempts.saturating_add(new.attempts);
    if newer {
        if new.claimed_rnm.is_some() {
            cur.claimed_rnm = new.claimed_rnm.clone();
        }
        if new.claimed_inn.is_some() {
            cur.claimed_inn = new.claimed_inn.clone();
        }
        if new.last_peer.is_some() {
            cur.last_peer = new.last_peer.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sighting(at: i64, attempts: u64, peer: &str) -> UnknownFnSighting {
        UnknownFnSighting {
            fn_number: FnNumber::parse_strict("9999078900005488").expect("fn"),
            at: Timestamp(at),
            attempts,
            claimed_rnm: None,
            claimed_inn: Some("7702203276".into()),
            peer: Some(peer.into()),
        }
    }

    #[test]
    fn sightings_aggregate_by_time_not_arrival_order() {
        let s1 = sighting(2000, 3, "10.0.0.2");
        let s0 = sighting(1000, 2, "10.0.0.1");
        let mut e = UnknownFn {
            fn_number: s1.fn_number,
            first_seen: s1.at,
            last_seen: s1.at,
            attempts: 0,
            claimed_rnm: None,
            claimed_inn: None,
            last_peer: None,
        };
        merge_sighting(&mut e, &s1);
        merge_sighting(&mut e, &s0);
        assert_eq!(e.first_seen, Timestamp(1000));
        assert_eq!(e.last_seen, Timestamp(2000));
        assert_eq!(e.attempts, 5);
        assert_eq!(e.last_peer.as_deref(), Some("10.0.0.2"), "the newest peer");

        let mut stored = e.clone();
        let later = UnknownFn {
            first_seen: Timestamp(3000),
            last_seen: Timestamp(3000),
            attempts: 1,
            last_peer: Some("10.0.0.3".into()),
            ..e.clone()
        };
        merge_unknown(&mut stored, &later);
        assert_eq!(stored.attempts, 6);
        assert_eq!(stored.first_seen, Timestamp(1000));
        assert_eq!(stored.last_seen, Timestamp(3000));
        assert_eq!(stored.last_peer.as_deref(), Some("10.0.0.3"));
    }

    #[test]
    fn unknown_rows_decode_or_are_corrupt() {
        let t = "9999078900005488".to_owned();
        let u = unknown_from_row((t.clone(), Some(CqlTimestamp(5)), None, Some(-3), None, None, None)).expect("decode");
        assert_eq!(u.last_seen, Timestamp(5));
        assert_eq!(u.attempts, 0, "a negative count is not trusted");
        let e = unknown_from_row((t, None, None, None, None, None, None)).expect_err("corrupt");
        assert_eq!(e.code(), "corrupt");
    }
}
