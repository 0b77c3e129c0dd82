//! The in-process state of the CQL backend: plain data that the store's shared state
//! holds and its behaviour modules (`clock`, `leases`, `directory`, `journal`, `derive`,
//! `delivery`, `background`) read and change. A leaf: it imports no behaviour module and
//! not the store, so that the store can hold it without import circles.

mod clock;
mod derive;
mod dirs;
mod fns;
mod follow;
mod journal;
mod leases;
mod reports;

pub(crate) use clock::ClockState;
pub(crate) use derive::{DeriveState, FnActivity};
pub(crate) use dirs::DirCache;
pub(crate) use fns::{FnsState, Pending, delivery_of};
pub(crate) use follow::Follow;
pub(crate) use journal::{DERIVE, Entry, FNS, Pos};
pub(crate) use leases::{Held, LeaseBook, fair_share};
pub(crate) use reports::{Agg, AggRow, FdSet, FnReport, ReportCache, ShiftMeta, kind};
