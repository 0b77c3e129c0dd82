//! Reads a report chunk by chunk and writes it as it goes: registers are taken in RNM
//! order, a few hundred FNs per storage call; rows grouped by register or shift are
//! complete after their register's chunk and go out at once, rows grouped by time or
//! owner at the end (there are at most `max_days` periods; owners are fewer than
//! registers). The response body is fed through a bounded channel, so a slow reader
//! holds the reading back, and a storage error in the middle aborts the body (the client
//! sees an incomplete transfer, never a report that silently lacks a part).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::body::Bytes;
use ffd::FnNumber;
use jiff::tz::TimeZone;
use serde_json::json;
use storage::model::Register;
use storage::{PageRequest, Store, StoreError};

use super::query::{Format, Plan};
use crate::control::reports::render::{csv_header, csv_row, row_json, totals_json};
use crate::control::reports::{Accumulator, Grouping, Row};

/// FNs per `report_totals` call (a register's FNs are never split).
const CHUNK_FNS: usize = 256;

/// Writes one report.
pub struct Producer {
    store: Arc<dyn Store>,
    plan: Plan,
    acc: Accumulator,
    /// Each register's zone, and every zone used.
    zones: Vec<TimeZone>,
    zone_names: BTreeSet<String>,
    next: usize,
    rows_written: u64,
    started: bool,
    done: bool,
}

impl Producer {
    /// A producer for a checked plan; `default_zone` is `[reports] default_time_zone`.
    pub fn new(store: Arc<dyn Store>, plan: Plan, default_zone: &str) -> Self {
        let mut cache: HashMap<String, TimeZone> = HashMap::new();
        let mut zone_names = BTreeSet::new();
        let zones = plan
            .registers
            .iter()
            .map(|r| {
                let wanted = plan.time_zone.as_deref().or(r.time_zone.as_deref()).unwrap_or(default_zone);
                // a stored zone the database does not know (never accepted by the API) counts as the default
                let name = if TimeZone::get(wanted).is_ok() { wanted } else { default_zone };
                zone_names.insert(name.to_owned());
                cache.entry(name.to_owned()).or_insert_with(|| TimeZone::get(name).unwrap_or(TimeZone::UTC)).clone()
            })
            .collect();
        let acc = Accumulator::new(plan.by, plan.days.clone());
        Self { store, plan, acc, zones, zone_names, next: 0, rows_written: 0, started: false, done: false }
    }

    fn header(&self) -> String {
        match self.plan.format {
            Format::Csv => csv_header(),
            Format::Json => {
                let head = json!({
                    "by": self.plan.by.as_str(),
                    "from": self.plan.from.to_string(),
                    "to": self.plan.to.to_string(),
                    "time_zones": self.zone_names,
                    "registers": self.plan.registers.len(),
                })
                .to_string();
                // the object stays open: rows follow, then the total
                format!("{},\"rows\":[\n", head.trim_end_matches('}'))
            }
        }
    }

    fn write_rows(&mut self, rows: &[Row], out: &mut String) {
        for r in rows {
            match self.plan.format {
                Format::Csv => out.push_str(&csv_row(&r.key.label(), r.rnm.as_deref(), &r.name, &r.totals)),
                Format::Json => {
                    if self.rows_written > 0 {
                        out.push_str(",\n");
                    }
                    out.push_str(&row_json(r).to_string());
                }
            }
            self.rows_written += 1;
        }
    }

    fn footer(&self) -> String {
        let total = self.acc.total();
        match self.plan.format {
            Format::Csv => csv_row("total", None, "", total),
            Format::Json => format!(
                "\n],\"total\":{},\"undated_shifts\":{}}}\n",
                totals_json(total),
                self.acc.undated_shifts
            ),
        }
    }

    /// The next piece of the body; `None` at the end.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let mut out = String::new();
        if !self.started {
            self.started = true;
            out.push_str(&self.header());
        }
        // the registers of this chunk
        let start = self.next;
        let mut fns = 0;
        while self.next < self.plan.registers.len() && (fns == 0 || fns < CHUNK_FNS) {
            fns += self.plan.registers[self.next].all_fns().count();
            self.next += 1;
        }
        let chunk = start..self.next;
        if chunk.is_empty() {
            let rows = self.acc.take_rows();
            self.write_rows(&rows, &mut out);
            out.push_str(&self.footer());
            self.done = true;
            return Ok(Some(Bytes::from(out)));
        }
        if self.plan.by == Grouping::Shift {
            self.add_shifts(chunk).await?;
        } else {
            self.add_totals(chunk).await?;
        }
        if matches!(self.plan.by, Grouping::Register | Grouping::Shift) {
            let rows = self.acc.take_rows();
            self.write_rows(&rows, &mut out);
        }
        Ok(Some(Bytes::from(out)))
    }

    async fn add_totals(&mut self, chunk: std::ops::Range<usize>) -> Result<(), StoreError> {
        let mut owner: HashMap<FnNumber, usize> = HashMap::new();
        for i in chunk.clone() {
            self.acc.register(&self.plan.registers[i]);
            for f in self.plan.registers[i].all_fns() {
                owner.insert(*f, i);
            }
        }
        let fns: Vec<FnNumber> = owner.keys().copied().collect();
        for b in self.store.report_totals(&fns, self.plan.days.clone()).await? {
            if let Some(&i) = owner.get(&b.fn_number) {
                self.acc.add(&self.plan.registers[i], &self.zones[i], &b);
            }
        }
        Ok(())
    }

    async fn add_shifts(&mut self, chunk: std::ops::Range<usize>) -> Result<(), StoreError> {
        for i in chunk {
            let r: &Register = &self.plan.registers[i];
            for f in r.all_fns() {
                let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
                loop {
                    let p = self.store.shifts(f, 0..=u32::MAX, page.clone()).await?;
                    for s in &p.items {
                        self.acc.add_shift(r, &f.to_string(), s);
                    }
                    match p.next {
                        Some(c) => page.cursor = Some(c),
                        None => break,
                    }
                }
            }
        }
        Ok(())
    }
}
