//! What the workload did: every request, when it started and ended, and what it got.

use std::time::Duration;

use crate::client::Outcome;

/// A request of the workload.
#[derive(Debug, Clone)]
pub enum Op {
    Reserve {
        event: i64,
        quantity: u32,
    },
    /// `repeat`: a second purchase of a hold this client bought already (another device of
    /// the same buyer, a fresh Idempotency-Key): it must not succeed.
    Purchase {
        reservation: String,
        reference: String,
        repeat: bool,
    },
    Cancel {
        reservation: String,
    },
    Read {
        event: i64,
    },
}

impl Op {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Reserve { .. } => "reserve",
            Self::Purchase { .. } => "purchase",
            Self::Cancel { .. } => "cancel",
            Self::Read { .. } => "read",
        }
    }
}

/// One request and its answer.
#[derive(Debug, Clone)]
pub struct Record {
    pub op: Op,
    /// Index of the server it was sent to.
    pub server: usize,
    /// Since the scenario's start.
    pub started: Duration,
    pub ended: Duration,
    pub outcome: Outcome,
    /// The reservation a 201 created.
    pub created: Option<String>,
}

impl Record {
    pub fn took(&self) -> Duration {
        self.ended.saturating_sub(self.started)
    }

    /// 2xx: the server acknowledged the request.
    pub fn acknowledged(&self) -> bool {
        self.outcome
            .status()
            .is_some_and(|s| (200..300).contains(&s))
    }
}
