//! Leases of background work: exclusive, renewable by the holder, taken over after expiry.

use std::time::Duration;

use super::Harness;

/// Leases: one holder at a time, renewable by the holder, taken over after expiry,
/// released only by the holder.
pub async fn leases_are_exclusive_renewable_and_expire(h: &dyn Harness) {
    let s = h.fresh().await;
    let long = Duration::from_secs(60);
    assert!(s.try_lease("fns-p1", "node-a", long).await.expect("lease"));
    assert!(!s.try_lease("fns-p1", "node-b", long).await.expect("lease"));
    assert!(s.try_lease("fns-p1", "node-a", long).await.expect("renew"));
    assert!(s.try_lease("fns-p2", "node-b", long).await.expect("other lease"));
    s.release_lease("fns-p1", "node-b").await.expect("not holder");
    assert!(!s.try_lease("fns-p1", "node-b", long).await.expect("still a's"));
    s.release_lease("fns-p1", "node-a").await.expect("release");
    assert!(s.try_lease("fns-p1", "node-b", long).await.expect("free now"));

    // a short lease is held for at least its TTL, then taken over once it expired (the
    // CQL backend's expiry is whole seconds, up to one more than asked)
    let short = Duration::from_secs(1);
    assert!(s.try_lease("short", "node-a", short).await.expect("lease"));
    assert!(!s.try_lease("short", "node-b", long).await.expect("held"));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !s.try_lease("short", "node-b", long).await.expect("expired") {
        assert!(std::time::Instant::now() < deadline, "a 1 s lease still held after 10 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(!s.try_lease("short", "node-a", long).await.expect("b's now"));
}
