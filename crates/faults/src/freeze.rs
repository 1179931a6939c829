//! A PostgreSQL server stalled with `SIGSTOP` and resumed with `SIGCONT`, as a stuck disk or
//! a paused virtual machine would stall it.

use std::path::Path;

use crate::servers;

/// The processes of one PostgreSQL server, stopped until [`Frozen::thaw`] (or drop).
pub struct Frozen {
    postmaster: u32,
    children: Vec<u32>,
    thawed: bool,
}

impl Frozen {
    /// Stops the server of `pgdata`: the postmaster first, so that it forks nothing that would
    /// escape the stall, then the children it has then. A child that exits in between (a
    /// short-lived backend) is not an error: there is nothing left of it to stop.
    pub fn stop(pgdata: &Path) -> Result<Self, String> {
        let postmaster = *test_support::postgres_pids(pgdata)
            .first()
            .ok_or_else(|| format!("no PostgreSQL server runs in {}", pgdata.display()))?;
        servers::signal(postmaster, "STOP")?;
        let mut frozen = Self {
            postmaster,
            children: Vec::new(),
            thawed: false,
        };
        for pid in test_support::postgres_pids(pgdata).into_iter().skip(1) {
            if servers::signal_if_alive(pid, "STOP")? {
                frozen.children.push(pid);
            }
        }
        Ok(frozen)
    }

    /// How many processes were stopped.
    pub fn processes(&self) -> usize {
        1 + self.children.len()
    }

    /// Resumes the children first and the postmaster last. In the other order the postmaster
    /// would at once reap a child that had exited while stopped (a zombie until then), and
    /// the signal to that child would find no process. Returns the processes that were gone
    /// all the same (something else killed and reaped them): the scenario's checks judge
    /// what that did, and its report says it.
    pub fn thaw(mut self) -> Result<Vec<u32>, String> {
        self.resume()
    }

    fn resume(&mut self) -> Result<Vec<u32>, String> {
        if std::mem::replace(&mut self.thawed, true) {
            return Ok(Vec::new());
        }
        let mut gone = Vec::new();
        for &pid in self.children.iter().chain([&self.postmaster]) {
            if !servers::signal_if_alive(pid, "CONT")? {
                gone.push(pid);
            }
        }
        Ok(gone)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = self.resume();
    }
}

/// The report's note on processes that were gone when resumed, if any.
pub fn gone_note(gone: &[u32]) -> Option<String> {
    (!gone.is_empty()).then(|| {
        format!(
            "{} stopped processes were gone when resumed (killed by another): {gone:?}",
            gone.len()
        )
    })
}
