//! Admin entities of the embedded store: tariffs, the audit log, alert rules, states and
//! notifications, resend jobs. All rare writes: JSON records, synced through the writer.

use std::ops::Bound;

use uuid::Uuid;

use super::documents::scan_page;
use super::{EmbeddedStore, Ks, codec, fj, keys};
use crate::error::StoreError;
use crate::ids::Timestamp;
use crate::model::{AlertNotification, AlertRule, AlertState, AuditEntry, JobState, ResendJob, TariffPlan};
use crate::store::{AlertFilter, AlertStore, AuditFilter, AuditStore, JobStore, Page, PageRequest, TariffStore};

/// Most items returned by the "all of them" listings (tariffs, rules), which are small
/// by nature; a cap keeps a mistake from loading an unbounded set.
const MAX_ALL: usize = 100_000;

/// Most notifications one `due_notifications` call returns.
const MAX_DUE: u32 = 10_000;

fn all<T: serde::de::DeserializeOwned>(ks: &fjall::Keyspace, what: &str) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    for g in ks.iter().take(MAX_ALL) {
        let (_, v) = g.into_inner().map_err(fj(what))?;
        out.push(codec::from_json(what, &v)?);
    }
    Ok(out)
}

fn rule_name_ok(name: &str) -> Result<(), StoreError> {
    if name.is_empty() || name.len() > 256 || name.contains('\0') {
        return Err(StoreError::Invalid("rule name must be 1 to 256 bytes without NUL".into()));
    }
    Ok(())
}

fn notification_pending(n: &AlertNotification) -> bool {
    n.delivered_at.is_none() && !n.abandoned
}

#[async_trait::async_trait]
impl TariffStore for EmbeddedStore {
    async fn create_tariff(&self, plan: &TariffPlan) -> Result<(), StoreError> {
        plan.validate().map_err(|e| StoreError::Invalid(format!("tariff: {e}")))?;
        let plan = plan.clone();
        self.mutate(move |tx| {
            if tx.get(Ks::Tariffs, plan.name.as_bytes())?.is_some() {
                return Err(StoreError::Conflict(format!("tariff {:?} already exists", plan.name)));
            }
            tx.put(Ks::Tariffs, plan.name.as_bytes().to_vec(), codec::to_json(&plan)?);
            Ok(())
        })
        .await
    }

    async fn get_tariff(&self, name: &str) -> Result<Option<TariffPlan>, StoreError> {
        let name = name.to_owned();
        self.read(move |eng| match eng.ks(Ks::Tariffs).get(name.as_bytes()).map_err(fj("get tariff"))? {
            Some(v) => Ok(Some(codec::from_json("tariff", &v)?)),
            None => Ok(None),
        })
        .await
    }

    async fn list_tariffs(&self) -> Result<Vec<TariffPlan>, StoreError> {
        self.read(|eng| all(eng.ks(Ks::Tariffs), "tariff")).await
    }
}

#[async_trait::async_trait]
impl AuditStore for EmbeddedStore {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let value = codec::to_json(entry)?;
        let id = entry.id;
        self.mutate(move |tx| {
            tx.put(Ks::Audit, id.as_bytes().to_vec(), value);
            Ok(())
        })
        .await
    }

    async fn list_audit(&self, filter: &AuditFilter, page: PageRequest) -> Result<Page<AuditEntry>, StoreError> {
        let filter = filter.clone();
        self.read(move |eng| {
            scan_page(eng.ks(Ks::Audit), Bound::Unbounded, Bound::Unbounded, true, &page, |_, v| {
                let e: AuditEntry = codec::from_json("audit entry", v)?;
                let ok = filter.actor.as_ref().is_none_or(|a| &e.actor == a)
                    && filter.action_prefix.as_ref().is_none_or(|p| e.action.starts_with(p.as_str()))
                    && filter.target.as_ref().is_none_or(|t| &e.target == t)
                    && filter.since.is_none_or(|s| e.at >= s);
                Ok(ok.then_some(e))
            })
        })
        .await
    }
}

#[async_trait::async_trait]
impl AlertStore for EmbeddedStore {
    async fn put_rule(&self, rule: &AlertRule) -> Result<(), StoreError> {
        rule_name_ok(&rule.name)?;
        let value = codec::to_json(rule)?;
        let name = rule.name.clone();
        self.mutate(move |tx| {
            tx.put(Ks::Rules, name.into_bytes(), value);
            Ok(())
        })
        .await
    }

    async fn get_rule(&self, name: &str) -> Result<Option<AlertRule>, StoreError> {
        let name = name.to_owned();
        self.read(move |eng| match eng.ks(Ks::Rules).get(name.as_bytes()).map_err(fj("get rule"))? {
            Some(v) => Ok(Some(codec::from_json("alert rule", &v)?)),
            None => Ok(None),
        })
        .await
    }

    async fn list_rules(&self) -> Result<Vec<AlertRule>, StoreError> {
        self.read(|eng| all(eng.ks(Ks::Rules), "alert rule")).await
    }

    async fn delete_rule(&self, name: &str) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.mutate(move |tx| {
            if tx.get(Ks::Rules, name.as_bytes())?.is_none() {
                return Err(StoreError::NotFound(format!("alert rule {name:?}")));
            }
            tx.del(Ks::Rules, name.as_bytes().to_vec());
            for k in tx.prefix_keys(Ks::AlertStates, &keys::alert_rule_prefix(&name))? {
                tx.del(Ks::AlertStates, k);
            }
            Ok(())
        })
        .await
    }

    async fn put_alert_states(&self, states: Vec<AlertState>) -> Result<(), StoreError> {
        if states.is_empty() {
            return Ok(());
        }
        let mut staged = Vec::with_capacity(states.len());
        for s in &states {
            rule_name_ok(&s.rule)?;
            staged.push((keys::alert_state(&s.rule, &s.rnm), codec::to_json(s)?));
        }
        self.mutate(move |tx| {
            for (k, v) in staged {
                tx.put(Ks::AlertStates, k, v);
            }
            Ok(())
        })
        .await
    }

    async fn list_alert_states(&self, filter: &AlertFilter, page: PageRequest) -> Result<Page<AlertState>, StoreError> {
        let filter = filter.clone();
        self.read(move |eng| {
            let (lo, hi) = match &filter.rule {
                Some(rule) => {
                    let p = keys::alert_rule_prefix(rule);
                    let mut hi = p.clone();
                    hi.extend_from_slice(&[0xFF; keys::RNM_LEN]);
                    (Bound::Included(p), Bound::Included(hi))
                }
                None => (Bound::Unbounded, Bound::Unbounded),
            };
            scan_page(eng.ks(Ks::AlertStates), lo, hi, false, &page, |_, v| {
                let s: AlertState = codec::from_json("alert state", v)?;
                let ok = filter.rule.as_ref().is_none_or(|r| &s.rule == r)
                    && filter.status.is_none_or(|st| s.status == st)
                    && filter.rnm.as_ref().is_none_or(|r| &s.rnm == r);
                Ok(ok.then_some(s))
            })
        })
        .await
    }

    async fn put_notifications(&self, notes: Vec<AlertNotification>) -> Result<(), StoreError> {
        if notes.is_empty() {
            return Ok(());
        }
        self.mutate(move |tx| {
            for n in notes {
                let id = n.id.as_bytes().to_vec();
                if let Some(v) = tx.get(Ks::Notifications, &id)? {
                    let old: AlertNotification = codec::from_json("notification", &v)?;
                    if notification_pending(&old) {
                        tx.del(Ks::NotifDue, keys::notif_due(old.next_attempt_at, &old.id));
                    }
                }
                if notification_pending(&n) {
                    tx.put(Ks::NotifDue, keys::notif_due(n.next_attempt_at, &n.id), Vec::new());
                }
                tx.put(Ks::Notifications, id, codec::to_json(&n)?);
            }
            Ok(())
        })
        .await
    }

    async fn due_notifications(&self, now: Timestamp, limit: u32) -> Result<Vec<AlertNotification>, StoreError> {
        let limit = limit.min(MAX_DUE) as usize;
        self.read(move |eng| {
            let mut hi = keys::ts(now).to_vec();
            hi.extend_from_slice(&[0xFF; 16]);
            let mut out = Vec::new();
            for g in eng.ks(Ks::NotifDue).range::<Vec<u8>, _>((Bound::Unbounded, Bound::Included(hi))) {
                if out.len() >= limit {
                    break;
                }
                let k = g.key().map_err(fj("scan due notifications"))?;
                let id = k
                    .get(8..24)
                    .and_then(|b| Uuid::from_slice(b).ok())
                    .ok_or_else(|| StoreError::Corrupt("notification due key".into()))?;
                let v = eng
                    .ks(Ks::Notifications)
                    .get(id.as_bytes())
                    .map_err(fj("get notification"))?
                    .ok_or_else(|| StoreError::Corrupt(format!("due index names missing notification {id}")))?;
                out.push(codec::from_json("notification", &v)?);
            }
            Ok(out)
        })
        .await
    }

    async fn list_notifications(&self, page: PageRequest) -> Result<Page<AlertNotification>, StoreError> {
        self.read(move |eng| {
            scan_page(eng.ks(Ks::Notifications), Bound::Unbounded, Bound::Unbounded, true, &page, |_, v| {
                Ok(Some(codec::from_json("notification", v)?))
            })
        })
        .await
    }
}

#[async_trait::async_trait]
impl JobStore for EmbeddedStore {
    async fn put_job(&self, job: &ResendJob) -> Result<(), StoreError> {
        let value = codec::to_json(job)?;
        let id = job.id;
        self.mutate(move |tx| {
            tx.put(Ks::Jobs, id.as_bytes().to_vec(), value);
            Ok(())
        })
        .await
    }

    async fn get_job(&self, id: &Uuid) -> Result<Option<ResendJob>, StoreError> {
        let id = *id;
        self.read(move |eng| match eng.ks(Ks::Jobs).get(id.as_bytes()).map_err(fj("get job"))? {
            Some(v) => Ok(Some(codec::from_json("job", &v)?)),
            None => Ok(None),
        })
        .await
    }

    async fn list_jobs(&self, states: &[JobState], page: PageRequest) -> Result<Page<ResendJob>, StoreError> {
        let states = states.to_vec();
        self.read(move |eng| {
            scan_page(eng.ks(Ks::Jobs), Bound::Unbounded, Bound::Unbounded, true, &page, |_, v| {
                let j: ResendJob = codec::from_json("job", v)?;
                Ok((states.is_empty() || states.contains(&j.state)).then_some(j))
            })
        })
        .await
    }
}
