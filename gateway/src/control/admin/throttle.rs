//! The limit on failed authentications per source address (`admin.max_auth_failures`
//! within `admin.auth_failure_window`): guessing tokens from one address stops after a
//! few tries. Past the limit every request from that address gets 429 (`Retry-After`)
//! without its token being looked at, until the window that started with the first
//! failure ends. Counted in `ofd_gateway_admin_auth_failures_total{result}`:
//! `unauthenticated` (a 401) and `limited` (a 429).
//!
//! Bounded: at most [`MAX_ADDRESSES`] addresses are tracked; when full, expired windows
//! are dropped, and if none has expired the new address is not tracked (its failures are
//! still answered 401 and counted).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::metrics as m;

/// Addresses tracked at most.
pub const MAX_ADDRESSES: usize = 10_000;

/// Failed authentications per address.
#[derive(Debug)]
pub struct Throttle {
    limit: u32,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Throttle {
    /// A throttle allowing `limit` failures per `window` (0: no limit).
    pub fn new(limit: u32, window: Duration) -> Self {
        Self { limit, window, failures: Mutex::new(HashMap::new()) }
    }

    /// When an address is over the limit: how long until it may try again.
    pub fn blocked(&self, ip: IpAddr) -> Option<Duration> {
        if self.limit == 0 {
            return None;
        }
        let map = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (since, n) = map.get(&ip)?;
        let left = self.window.checked_sub(since.elapsed())?;
        if *n >= self.limit {
            metrics::counter!(m::ADMIN_AUTH_FAILURES, "result" => "limited").increment(1);
            Some(left)
        } else {
            None
        }
    }

    /// Records a failed authentication from an address.
    pub fn failed(&self, ip: Option<IpAddr>) {
        metrics::counter!(m::ADMIN_AUTH_FAILURES, "result" => "unauthenticated").increment(1);
        let (Some(ip), true) = (ip, self.limit > 0) else {
            return;
        };
        let mut map = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let window = self.window;
        if map.len() >= MAX_ADDRESSES && !map.contains_key(&ip) {
            map.retain(|_, (since, _)| since.elapsed() < window);
            if map.len() >= MAX_ADDRESSES {
                return;
            }
        }
        let entry = map.entry(ip).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= window {
            *entry = (Instant::now(), 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_an_address_past_the_limit_within_the_window() {
        let t = Throttle::new(3, Duration::from_millis(200));
        let a: IpAddr = [127, 0, 0, 2].into();
        let b: IpAddr = [127, 0, 0, 3].into();
        for _ in 0..3 {
            assert!(t.blocked(a).is_none());
            t.failed(Some(a));
        }
        assert!(t.blocked(a).is_some(), "the fourth try is refused");
        assert!(t.blocked(b).is_none(), "other addresses are not");
        std::thread::sleep(Duration::from_millis(250));
        assert!(t.blocked(a).is_none(), "the window ended");
        let off = Throttle::new(0, Duration::from_secs(1));
        for _ in 0..100 {
            off.failed(Some(a));
        }
        assert!(off.blocked(a).is_none());
    }
}
