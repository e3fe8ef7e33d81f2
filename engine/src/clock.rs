//! Time, injected: the system clock in production, a manual one that tests move.

use std::sync::Arc;
use tocsin_sdk::time::Timestamp;
use tokio::sync::watch;

/// Where "now" comes from.
#[derive(Clone, Debug)]
pub enum Clock {
    /// The machine's clock.
    System,
    /// A clock that stands still until moved.
    Manual(Arc<watch::Sender<Timestamp>>),
}

impl Clock {
    /// A manual clock starting at `start`.
    pub fn manual(start: Timestamp) -> Self {
        Self::Manual(Arc::new(watch::Sender::new(start)))
    }

    /// The current instant.
    pub fn now(&self) -> Timestamp {
        match self {
            // The store keeps microseconds; so does the clock, so a value reads back equal.
            Self::System => chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6),
            Self::Manual(now) => *now.borrow(),
        }
    }

    /// Moves a manual clock forward. Panics on the system clock, which only time moves.
    pub fn advance(&self, by: chrono::Duration) {
        match self {
            Self::System => panic!("the system clock cannot be moved"),
            Self::Manual(now) => now.send_modify(|t| *t += by),
        }
    }

    /// Returns once the clock reads `at` or later.
    pub async fn sleep_until(&self, at: Timestamp) {
        match self {
            Self::System => {
                let wait = (at - chrono::Utc::now()).to_std().unwrap_or_default();
                tokio::time::sleep(wait).await;
            }
            Self::Manual(now) => {
                let mut rx = now.subscribe();
                // `wait_for` checks the current value first, then every change.
                let _ = rx.wait_for(|t| *t >= at).await;
            }
        }
    }
}
