//! The admin plane: tariffs, audit log, alert rules / states / notifications, resend
//! jobs. Records are stored as JSON (the model evolves without schema changes); the keys
//! and the columns queries need are real columns.

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt, stream};
use scylla::value::CqlTimestamp;
use uuid::Uuid;

use super::directory::dir_ttl;
use super::keys::{self, Cursor, SHARDS, day_of, rnm_bucket, shard_of};
use super::rows::{from_json, to_json, ts};
use super::store::{OpTimer, ScyllaStore, unordered};
use crate::error::StoreError;
use crate::ids::Timestamp;
use crate::model::{AlertNotification, AlertRule, AlertState, AuditEntry, JobState, ResendJob, TariffPlan};
use crate::store::{AlertFilter, AlertStore, AuditFilter, AuditStore, JobStore, Page, PageRequest, TariffStore};

/// Rows a filtered listing examines before it returns what it has with a cursor.
const SCAN_BUDGET: usize = 50_000;

fn notification_pending(n: &AlertNotification) -> bool {
    n.delivered_at.is_none() && !n.abandoned
}

fn note_shard(id: &Uuid) -> i32 {
    shard_of(id.as_bytes(), SHARDS)
}

#[async_trait]
impl TariffStore for ScyllaStore {
    /// Read-then-insert: two admins creating the same name at the same instant could
    /// both succeed (the later wins); tariffs are created a few times a year.
    async fn create_tariff(&self, plan: &TariffPlan) -> Result<(), StoreError> {
        let _t = OpTimer::start("create_tariff");
        if self.get_tariff(&plan.name).await?.is_some() {
            return Err(StoreError::Conflict(format!("tariff {:?} already exists", plan.name)));
        }
        self.write(&self.st.tariff_put, (plan.name.as_str(), to_json(plan)?)).await
    }

    async fn get_tariff(&self, name: &str) -> Result<Option<TariffPlan>, StoreError> {
        let _t = OpTimer::start("get_tariff");
        let row: Option<(Option<String>,)> = self.one(&self.st.tariff_get, (name,)).await?;
        match row {
            Some((Some(b),)) => Ok(Some(from_json(&format!("tariff {name}"), &b)?)),
            _ => Ok(None),
        }
    }

    async fn list_tariffs(&self) -> Result<Vec<TariffPlan>, StoreError> {
        let _t = OpTimer::start("list_tariffs");
        let rows: Vec<(Option<String>,)> = self.all_rows(&self.st.tariff_all, ()).await?;
        rows.into_iter().filter_map(|(b,)| b).map(|b| from_json("tariff", &b)).collect()
    }
}

#[async_trait]
impl AuditStore for ScyllaStore {
    /// Written at the configured consistency before the admin call answers; an error
    /// refuses the call (fail closed).
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let _t = OpTimer::start("append_audit");
        let day = day_of(entry.at);
        self.dir_int("audit", "", i64::from(day), dir_ttl::audit()).await?;
        self.write(&self.st.audit_put, (day, ts(entry.at), entry.id, to_json(entry)?)).await
    }

    async fn list_audit(&self, filter: &AuditFilter, page: PageRequest) -> Result<Page<AuditEntry>, StoreError> {
        let _t = OpTimer::start("list_audit");
        let limit = page.effective_limit();
        let before = Cursor::decode_as(page.cursor.as_deref(), |c| match c {
            Cursor::Audit { day, at, id } => Some((day, at, id)),
            _ => None,
        })?;
        let lo = filter.since.map_or(i64::from(i32::MIN), |s| i64::from(day_of(s)));
        let hi = before.map_or(i64::from(i32::MAX), |(d, _, _)| i64::from(d));
        let days = self.dir_int_range("audit", "", lo, hi, true).await?;
        let mut items: Vec<AuditEntry> = Vec::new();
        let mut examined = 0usize;
        let mut last: Option<(i32, i64, Uuid)> = before;
        let mut more = false;
        'days: for day in days {
            let day = i32::try_from(day).map_err(|_| StoreError::Corrupt(format!("day {day} out of range")))?;
            let mut s = match before {
                Some((d, at, id)) if d == day => {
                    self.stream::<(CqlTimestamp, Uuid, Option<String>)>(
                        &self.st.audit_day_before,
                        (day, CqlTimestamp(at), id),
                    )
                    .await?
                }
                _ => self.stream::<(CqlTimestamp, Uuid, Option<String>)>(&self.st.audit_day, (day,)).await?,
            };
            while let Some((at, id, body)) = self.next_row(&mut s).await? {
                if filter.since.is_some_and(|s| at.0 < s.millis()) {
                    break 'days; // newest first: everything further is older
                }
                examined += 1;
                last = Some((day, at.0, id));
                let Some(body) = body else { continue };
                let e: AuditEntry = from_json("audit entry", &body)?;
                let pass = filter.actor.as_ref().is_none_or(|a| &e.actor == a)
                    && filter.action_prefix.as_ref().is_none_or(|p| e.action.starts_with(p.as_str()))
                    && filter.target.as_ref().is_none_or(|t| &e.target == t);
                if pass {
                    if items.len() == limit {
                        more = true;
                        break 'days;
                    }
                    items.push(e);
                }
                if examined >= SCAN_BUDGET {
                    break 'days;
                }
            }
        }
        let next = if more {
            items.last().map(|e| Cursor::Audit { day: day_of(e.at), at: e.at.millis(), id: e.id }.encode())
        } else if examined >= SCAN_BUDGET {
            last.map(|(day, at, id)| Cursor::Audit { day, at, id }.encode())
        } else {
            None
        };
        Ok(Page { items, next })
    }
}

impl ScyllaStore {
    async fn read_state(&self, rule: &str, rnm: &crate::ids::Rnm) -> Result<Option<AlertState>, StoreError> {
        let row: Option<(Option<String>,)> =
            self.one(&self.st.state_get, (rule, rnm_bucket(rnm), rnm.as_str())).await?;
        match row {
            Some((Some(b),)) => Ok(Some(from_json("alert state", &b)?)),
            _ => Ok(None),
        }
    }

    async fn read_note(&self, n: &AlertNotification) -> Result<Option<AlertNotification>, StoreError> {
        let row: Option<(Option<String>,)> =
            self.one(&self.st.note_get, (day_of(n.created_at), note_shard(&n.id), ts(n.created_at), n.id)).await?;
        match row {
            Some((Some(b),)) => Ok(Some(from_json("alert notification", &b)?)),
            _ => Ok(None),
        }
    }

    async fn put_note(&self, n: &AlertNotification) -> Result<(), StoreError> {
        let day = day_of(n.created_at);
        let shard = note_shard(&n.id);
        let old = self.read_note(n).await?;
        let body = to_json(n)?;
        self.dir_int("notes", "", i64::from(day), dir_ttl::notes()).await?;
        self.write(&self.st.note_put, (day, shard, ts(n.created_at), n.id, body.as_str())).await?;
        let pending = notification_pending(n);
        if let Some(old) = old
            && notification_pending(&old)
            && (!pending || old.next_attempt_at != n.next_attempt_at)
        {
            self.write(&self.st.due_delete, (shard, ts(old.next_attempt_at), n.id)).await?;
        }
        if pending {
            self.write(&self.st.due_put, (shard, ts(n.next_attempt_at), n.id, body.as_str())).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl AlertStore for ScyllaStore {
    async fn put_rule(&self, rule: &AlertRule) -> Result<(), StoreError> {
        let _t = OpTimer::start("put_rule");
        self.write(&self.st.rule_put, (rule.name.as_str(), to_json(rule)?)).await
    }

    async fn get_rule(&self, name: &str) -> Result<Option<AlertRule>, StoreError> {
        let _t = OpTimer::start("get_rule");
        let row: Option<(Option<String>,)> = self.one(&self.st.rule_get, (name,)).await?;
        match row {
            Some((Some(b),)) => Ok(Some(from_json(&format!("alert rule {name}"), &b)?)),
            _ => Ok(None),
        }
    }

    async fn list_rules(&self) -> Result<Vec<AlertRule>, StoreError> {
        let _t = OpTimer::start("list_rules");
        let rows: Vec<(Option<String>,)> = self.all_rows(&self.st.rule_all, ()).await?;
        rows.into_iter().filter_map(|(b,)| b).map(|b| from_json("alert rule", &b)).collect()
    }

    async fn delete_rule(&self, name: &str) -> Result<(), StoreError> {
        let _t = OpTimer::start("delete_rule");
        if self.get_rule(name).await?.is_none() {
            return Err(StoreError::NotFound(format!("alert rule {name:?}")));
        }
        // States first (partition deletes), then the rule: a failure half-way leaves the
        // rule in place and the call can be repeated. The directory entries of the rule
        // stay: other nodes cache them as written, so deleting them could hide states a
        // re-created rule gets later; an entry pointing at an empty partition costs one
        // empty read in a listing.
        for bucket in self.dir_text_from("alert_states", name, "").await? {
            self.write(&self.st.state_drop_bucket, (name, bucket.as_str())).await?;
        }
        self.write(&self.st.rule_delete, (name,)).await
    }

    async fn put_alert_states(&self, states: Vec<AlertState>) -> Result<(), StoreError> {
        let _t = OpTimer::start("put_alert_states");
        let futs: Vec<_> = states
            .iter()
            .map(|s| async move {
                let bucket = rnm_bucket(&s.rnm);
                self.dir_text("alert_rules_states", "", &s.rule).await?;
                self.dir_text("alert_states", &s.rule, &bucket).await?;
                self.write(&self.st.state_put, (s.rule.as_str(), bucket.as_str(), s.rnm.as_str(), to_json(s)?)).await
            })
            .collect();
        unordered(futs, 32).await?;
        Ok(())
    }

    async fn list_alert_states(&self, filter: &AlertFilter, page: PageRequest) -> Result<Page<AlertState>, StoreError> {
        let _t = OpTimer::start("list_alert_states");
        let limit = page.effective_limit();
        let after = Cursor::decode_as(page.cursor.as_deref(), |c| match c {
            Cursor::AlertStates { rule, rnm } => Some((rule, rnm)),
            _ => None,
        })?;
        // one (rule, register): a point read
        if let (Some(rule), Some(rnm)) = (&filter.rule, &filter.rnm) {
            let done = after.is_some_and(|(r, n)| (r.as_str(), n.as_str()) >= (rule.as_str(), rnm.as_str()));
            let items = if done {
                Vec::new()
            } else {
                self.read_state(rule, rnm)
                    .await?
                    .filter(|s| filter.status.is_none_or(|st| s.status == st))
                    .into_iter()
                    .collect()
            };
            return Ok(Page { items, next: None });
        }
        let (after_rule, after_rnm) = after.unwrap_or_default();
        let rules: Vec<String> = match &filter.rule {
            Some(r) if *r >= after_rule => vec![r.clone()],
            Some(_) => Vec::new(),
            None => self.dir_text_from("alert_rules_states", "", &after_rule).await?,
        };
        let mut items: Vec<AlertState> = Vec::new();
        let mut examined = 0usize;
        let mut more = false;
        let mut last: Option<(String, String)> = None;
        'rules: for rule in rules {
            let resume = rule == after_rule;
            let buckets: Vec<String> = match &filter.rnm {
                Some(r) => vec![rnm_bucket(r)],
                None => {
                    let start = if resume { after_rnm.chars().take(keys::RNM_PREFIX).collect() } else { String::new() };
                    self.dir_text_from("alert_states", &rule, &start).await?
                }
            };
            for b in buckets {
                let from = if resume && after_rnm.starts_with(b.as_str()) { after_rnm.as_str() } else { "" };
                let mut s = self
                    .stream::<(String, Option<String>)>(&self.st.state_after, (rule.as_str(), b.as_str(), from))
                    .await?;
                while let Some((rnm, body)) = self.next_row(&mut s).await? {
                    examined += 1;
                    last = Some((rule.clone(), rnm.clone()));
                    let Some(body) = body else { continue };
                    let st: AlertState = from_json("alert state", &body)?;
                    let pass = filter.status.is_none_or(|x| st.status == x)
                        && filter.rnm.as_ref().is_none_or(|r| &st.rnm == r);
                    if pass {
                        if items.len() == limit {
                            more = true;
                            break 'rules;
                        }
                        items.push(st);
                    }
                    if examined >= SCAN_BUDGET {
                        break 'rules;
                    }
                }
            }
        }
        let next = if more {
            items.last().map(|s| Cursor::AlertStates { rule: s.rule.clone(), rnm: s.rnm.as_str().to_owned() }.encode())
        } else if examined >= SCAN_BUDGET {
            last.map(|(rule, rnm)| Cursor::AlertStates { rule, rnm }.encode())
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn put_notifications(&self, notes: Vec<AlertNotification>) -> Result<(), StoreError> {
        let _t = OpTimer::start("put_notifications");
        // in order: a note given twice in one call ends in its last state
        for n in &notes {
            self.put_note(n).await?;
        }
        Ok(())
    }

    async fn due_notifications(&self, now: Timestamp, limit: u32) -> Result<Vec<AlertNotification>, StoreError> {
        let _t = OpTimer::start("due_notifications");
        let limit = PageRequest::first(limit).effective_limit();
        let lim = i32::try_from(limit).unwrap_or(i32::MAX);
        let per_shard: Vec<Vec<(Option<String>,)>> = stream::iter((0..i32::from(SHARDS)).map(|shard| async move {
            self.rows::<(Option<String>,)>(&self.st.due_until, (shard, ts(now), lim)).await
        }))
        .buffer_unordered(usize::from(SHARDS))
        .try_collect()
        .await?;
        let mut out: Vec<AlertNotification> = Vec::new();
        for (b,) in per_shard.into_iter().flatten() {
            if let Some(b) = b {
                let n: AlertNotification = from_json("alert notification", &b)?;
                if notification_pending(&n) && n.next_attempt_at <= now {
                    out.push(n);
                }
            }
        }
        out.sort_by(|a, b| a.next_attempt_at.cmp(&b.next_attempt_at).then(a.id.cmp(&b.id)));
        out.truncate(limit);
        Ok(out)
    }

    async fn list_notifications(&self, page: PageRequest) -> Result<Page<AlertNotification>, StoreError> {
        let _t = OpTimer::start("list_notifications");
        let limit = page.effective_limit();
        let before = Cursor::decode_as(page.cursor.as_deref(), |c| match c {
            Cursor::Notes { at, id } => Some((at, id)),
            _ => None,
        })?;
        let hi = before.map_or(i64::from(i32::MAX), |(at, _)| i64::from(day_of(Timestamp(at))));
        let days = self.dir_int_range("notes", "", i64::from(i32::MIN), hi, true).await?;
        let want = i32::try_from(limit + 1).unwrap_or(i32::MAX);
        let mut items: Vec<AlertNotification> = Vec::new();
        for day in days {
            let day = i32::try_from(day).map_err(|_| StoreError::Corrupt(format!("day {day} out of range")))?;
            // each shard of the day is sorted newest first: take the top of each, merge
            let shards: Vec<Vec<(CqlTimestamp, Uuid, Option<String>)>> =
                stream::iter((0..i32::from(SHARDS)).map(|shard| async move {
                    match before {
                        Some((at, id)) if day_of(Timestamp(at)) == day => {
                            self.rows(&self.st.note_day_before, (day, shard, CqlTimestamp(at), id, want)).await
                        }
                        _ => self.rows(&self.st.note_day, (day, shard, want)).await,
                    }
                }))
                .buffer_unordered(usize::from(SHARDS))
                .try_collect()
                .await?;
            let mut day_rows: Vec<(CqlTimestamp, Uuid, Option<String>)> = shards.into_iter().flatten().collect();
            day_rows.sort_by_key(|r| std::cmp::Reverse((r.0.0, r.1)));
            for (_, _, body) in day_rows {
                if let Some(b) = body {
                    items.push(from_json("alert notification", &b)?);
                    if items.len() > limit {
                        break;
                    }
                }
            }
            if items.len() > limit {
                break;
            }
        }
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|n| Cursor::Notes { at: n.created_at.millis(), id: n.id }.encode())
        } else {
            None
        };
        Ok(Page { items, next })
    }
}

#[async_trait]
impl JobStore for ScyllaStore {
    async fn put_job(&self, job: &ResendJob) -> Result<(), StoreError> {
        let _t = OpTimer::start("put_job");
        self.write(&self.st.job_put, (job.id, ts(job.created_at), to_json(job)?)).await
    }

    async fn get_job(&self, id: &Uuid) -> Result<Option<ResendJob>, StoreError> {
        let _t = OpTimer::start("get_job");
        let row: Option<(Option<String>,)> = self.one(&self.st.job_get, (*id,)).await?;
        match row {
            Some((Some(b),)) => Ok(Some(from_json(&format!("job {id}"), &b)?)),
            _ => Ok(None),
        }
    }

    /// Jobs are few (admin-created, a handful a day), so this reads them all and sorts
    /// newest first by (created_at, id).
    async fn list_jobs(&self, states: &[JobState], page: PageRequest) -> Result<Page<ResendJob>, StoreError> {
        let _t = OpTimer::start("list_jobs");
        let limit = page.effective_limit();
        let before = Cursor::decode_as(page.cursor.as_deref(), |c| match c {
            Cursor::Jobs { at, id } => Some((at, id)),
            _ => None,
        })?;
        let rows: Vec<(Option<String>,)> = self.all_rows(&self.st.job_all, ()).await?;
        let mut jobs: Vec<ResendJob> = rows
            .into_iter()
            .filter_map(|(b,)| b)
            .map(|b| from_json::<ResendJob>("job", &b))
            .collect::<Result<_, _>>()?;
        jobs.retain(|j| states.is_empty() || states.contains(&j.state));
        jobs.sort_by_key(|j| std::cmp::Reverse((j.created_at, j.id)));
        if let Some((at, id)) = before {
            jobs.retain(|j| (j.created_at.millis(), j.id) < (at, id));
        }
        let next = if jobs.len() > limit {
            jobs.truncate(limit);
            jobs.last().map(|j| Cursor::Jobs { at: j.created_at.millis(), id: j.id }.encode())
        } else {
            None
        };
        Ok(Page { items: jobs, next })
    }
}
