//! Resend jobs: put, get, update, listed newest first and by state.

use uuid::Uuid;

use super::Harness;
use super::fixtures::{collect_pages, job};
use crate::model::{JobState, ResendJob};

/// Jobs: put/get/update, newest first, filtered by state.
pub async fn jobs_newest_first_with_state_filter(h: &dyn Harness) {
    let s = h.fresh().await;
    let j1 = job(1, JobState::Pending);
    let j2 = job(2, JobState::Running);
    let j3 = job(3, JobState::Completed);
    for j in [&j2, &j1, &j3] {
        s.put_job(j).await.expect("put");
    }
    assert_eq!(s.get_job(&j2.id).await.expect("get"), Some(j2.clone()));
    assert_eq!(s.get_job(&Uuid::nil()).await.expect("get"), None);
    let ids = |v: Vec<ResendJob>| v.into_iter().map(|j| j.id).collect::<Vec<_>>();
    let all = collect_pages(2, |p| s.list_jobs(&[], p)).await;
    assert_eq!(ids(all), vec![j3.id, j2.id, j1.id]);
    let active = collect_pages(1, |p| s.list_jobs(&[JobState::Running, JobState::Pending], p)).await;
    assert_eq!(ids(active), vec![j2.id, j1.id]);
    let mut j1done = j1.clone();
    j1done.state = JobState::Completed;
    j1done.delivered = 42;
    j1done.cursor = Some("opaque".into());
    s.put_job(&j1done).await.expect("update");
    assert_eq!(s.get_job(&j1.id).await.expect("get"), Some(j1done));
    let done = collect_pages(5, |p| s.list_jobs(&[JobState::Completed], p)).await;
    assert_eq!(ids(done), vec![j3.id, j1.id]);
}
