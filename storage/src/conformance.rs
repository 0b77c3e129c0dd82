//! The conformance suite: one set of behavioural tests every [`Store`] backend must pass.
//! A backend's test file provides a [`Harness`] and either instantiates every test with
//! [`conformance_suite!`] or calls [`run_all`].

use std::sync::Arc;

use async_trait::async_trait;

use crate::store::Store;

/// How the suite obtains stores of one backend.
#[async_trait]
pub trait Harness: Send + Sync {
    /// A store with no data in it (a fresh directory or keyspace).
    async fn fresh(&self) -> Arc<dyn Store>;
    /// Closes `store` and opens the same data again; `None` if the backend cannot.
    async fn reopen(&self, store: Arc<dyn Store>) -> Option<Arc<dyn Store>>;
}

/// Runs every test of the suite against `harness`, in sequence, panicking on the first
/// failure with the test's name.
pub async fn run_all(harness: &dyn Harness) {
    for (name, test) in tests() {
        eprintln!("conformance: {name}");
        test(harness).await;
    }
}

type TestFn = for<'a> fn(&'a dyn Harness) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

/// The tests, by name.
pub fn tests() -> Vec<(&'static str, TestFn)> {
    Vec::new()
}

/// Instantiates every conformance test as its own `#[tokio::test]`, given an expression
/// that builds the harness.
#[macro_export]
macro_rules! conformance_suite {
    ($harness:expr) => {
        #[tokio::test]
        async fn conformance_all() {
            let harness = $harness;
            $crate::conformance::run_all(&harness).await;
        }
    };
}
