//! The conformance suite on the domain's in-memory store: the suite's own check, with no
//! database, and a reference for what every store must do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use domain::memory::MemoryStore;

struct Memory(Arc<MemoryStore>);

impl store_conformance::Harness for Memory {
    type Store = MemoryStore;

    fn new() -> Self {
        Self(Arc::new(MemoryStore::new()))
    }

    fn store(&self) -> Arc<MemoryStore> {
        Arc::clone(&self.0)
    }

    fn another_store(&self) -> Arc<MemoryStore> {
        Arc::clone(&self.0)
    }
}

store_conformance::conformance_tests!(Memory);
