//! A sub-millisecond timer for the open-loop schedule.
//!
//! tokio's timer wheel has a resolution of one millisecond and rounds deadlines *up*, so
//! every open-loop send would start on average ~0.5–1 ms after its intended time. Since
//! the corrected latency is measured from the intended time, that lag would be added to
//! every sample: honest, but it would drown a 30 µs loopback exchange and eat a fifth of
//! a 5 ms p99 budget for reasons that are the generator's, not the gateway's.
//!
//! The pacer is one thread holding a heap of `(deadline, waker)`. It sleeps on a condition
//! variable until the earliest deadline (with its timer slack lowered to 1 µs), wakes every
//! task that is due, and goes back to sleep; a task registers only when it has to wait.
//! What lag remains — the thread's wake-up and the runtime picking the task up — is real
//! generator lag and is reported as the `send_lag` histogram.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

struct Entry {
    deadline: Instant,
    seq: u64,
    waker: Waker,
    fired: Arc<AtomicBool>,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.deadline, self.seq) == (o.deadline, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.deadline, self.seq).cmp(&(o.deadline, o.seq))
    }
}

struct Inner {
    heap: Mutex<BinaryHeap<Reverse<Entry>>>,
    cv: Condvar,
    stop: AtomicBool,
    seq: AtomicU64,
}

/// The pacer thread. Dropping the handle stops it.
pub struct Pacer {
    inner: Arc<Inner>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Pacer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pacer")
    }
}

impl Pacer {
    /// Starts the thread.
    pub fn start() -> std::io::Result<Self> {
        let inner = Arc::new(Inner {
            heap: Mutex::new(BinaryHeap::new()),
            cv: Condvar::new(),
            stop: AtomicBool::new(false),
            seq: AtomicU64::new(0),
        });
        let i2 = inner.clone();
        let thread = std::thread::Builder::new().name("loadgen-pacer".into()).spawn(move || {
            crate::sys::lower_timer_slack();
            pace(&i2);
        })?;
        Ok(Self { inner, thread: Some(thread) })
    }

    /// A future that completes at `deadline` (never before it).
    pub fn sleep_until(&self, deadline: tokio::time::Instant) -> PaceUntil {
        PaceUntil { inner: self.inner.clone(), deadline: deadline.into_std(), fired: None }
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        {
            let _g = self.inner.heap.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            self.inner.cv.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn pace(inner: &Inner) {
    let mut due: Vec<Entry> = Vec::with_capacity(256);
    loop {
        {
            let mut heap = inner.heap.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            loop {
                if inner.stop.load(Ordering::SeqCst) {
                    // wake everyone so that no task waits on a dead pacer
                    due.extend(heap.drain().map(|Reverse(e)| e));
                    drop(heap);
                    for e in due.drain(..) {
                        e.fired.store(true, Ordering::Release);
                        e.waker.wake();
                    }
                    return;
                }
                let now = Instant::now();
                while heap.peek().is_some_and(|Reverse(e)| e.deadline <= now) {
                    if let Some(Reverse(e)) = heap.pop() {
                        due.push(e);
                    }
                }
                if !due.is_empty() {
                    break;
                }
                heap = match heap.peek() {
                    Some(Reverse(e)) => {
                        let wait = e.deadline.saturating_duration_since(now);
                        inner.cv.wait_timeout(heap, wait).unwrap_or_else(std::sync::PoisonError::into_inner).0
                    }
                    None => inner.cv.wait(heap).unwrap_or_else(std::sync::PoisonError::into_inner),
                };
            }
        }
        for e in due.drain(..) {
            e.fired.store(true, Ordering::Release);
            e.waker.wake();
        }
    }
}

/// See [`Pacer::sleep_until`].
pub struct PaceUntil {
    inner: Arc<Inner>,
    deadline: Instant,
    fired: Option<Arc<AtomicBool>>,
}

impl std::fmt::Debug for PaceUntil {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaceUntil").field("deadline", &self.deadline).finish_non_exhaustive()
    }
}

impl Future for PaceUntil {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline
            || self.fired.as_ref().is_some_and(|f| f.load(Ordering::Acquire))
            || self.inner.stop.load(Ordering::SeqCst)
        {
            return Poll::Ready(());
        }
        if self.fired.is_some() {
            // spurious poll: the registered waker is still the task's
            return Poll::Pending;
        }
        let fired = Arc::new(AtomicBool::new(false));
        self.fired = Some(fired.clone());
        let entry = Entry {
            deadline: self.deadline,
            seq: self.inner.seq.fetch_add(1, Ordering::Relaxed),
            waker: cx.waker().clone(),
            fired,
        };
        let mut heap = self.inner.heap.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let earlier = heap.peek().is_none_or(|Reverse(e)| entry.deadline < e.deadline);
        heap.push(Reverse(entry));
        drop(heap);
        if earlier {
            self.inner.cv.notify_one();
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wakes_at_the_deadline_not_before() {
        let p = Pacer::start().expect("pacer");
        let mut lags = Vec::new();
        for i in 0..50u64 {
            let at = tokio::time::Instant::now() + Duration::from_micros(300 + i * 37);
            p.sleep_until(at).await;
            let now = tokio::time::Instant::now();
            assert!(now >= at, "woke early");
            lags.push(now - at);
        }
        lags.sort();
        // the median lag must be well under tokio's 1 ms tick
        assert!(lags[25] < Duration::from_micros(500), "median lag {:?}", lags[25]);
    }

    #[tokio::test]
    async fn many_waiters_and_drop() {
        let p = Arc::new(Pacer::start().expect("pacer"));
        let base = tokio::time::Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for i in 0..200u64 {
            let p = p.clone();
            set.spawn(async move {
                let at = base + Duration::from_micros(i * 50);
                p.sleep_until(at).await;
                tokio::time::Instant::now() >= at
            });
        }
        while let Some(r) = set.join_next().await {
            assert!(r.expect("join"));
        }
        // a waiter pending when the pacer stops is released
        let far = p.sleep_until(tokio::time::Instant::now() + Duration::from_secs(3600));
        let h = tokio::spawn(far);
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(Arc::try_unwrap(p).ok());
        tokio::time::timeout(Duration::from_secs(2), h).await.expect("released").expect("join");
    }
}
