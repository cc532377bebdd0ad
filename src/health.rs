//! Heartbeats of the background workers (`/readyz` reads them). Each worker holds a
//! [`Beat`] from the [`Health`] registry of its database handle: it marks itself busy when it
//! takes up work and idle when it waits for more. A worker is *stopped* once its `Beat` is
//! dropped (its thread or task ended, by returning, panicking or being aborted) and *stuck*
//! when it has been busy longer than the threshold the caller gives. Waiting for work is
//! never a failure: a writer with an empty queue is healthy however long it waits.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a part is doing, as `/readyz` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PartState {
    /// Waiting for work.
    Idle,
    /// Working, for less than the threshold.
    Busy,
    /// Working for longer than the threshold.
    Stuck,
    /// The worker ended.
    Stopped,
}

impl PartState {
    pub fn is_failing(self) -> bool {
        matches!(self, PartState::Stuck | PartState::Stopped)
    }
}

/// One part's line in the readiness report.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PartReport {
    pub part: String,
    pub state: PartState,
    /// Milliseconds since the part last took up work or went idle.
    pub since_ms: u64,
    /// Units of work taken up so far.
    pub beats: u64,
}

struct Shared {
    name: String,
    started: Instant,
    alive: AtomicBool,
    busy: AtomicBool,
    /// Milliseconds after `started` of the last change between busy and idle.
    changed_ms: AtomicU64,
    beats: AtomicU64,
}

impl Shared {
    fn mark(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.changed_ms.store(ms, Ordering::Relaxed);
    }
}

/// The registry of one database handle's workers (and of the server's tasks).
#[derive(Clone, Default)]
pub struct Health {
    parts: Arc<Mutex<Vec<Arc<Shared>>>>,
}

/// A worker's heartbeat handle. Dropping it reports the worker stopped.
pub struct Beat {
    shared: Arc<Shared>,
}

impl Health {
    /// Registers a worker under `name`; it starts idle.
    pub fn register(&self, name: impl Into<String>) -> Beat {
        let shared = Arc::new(Shared {
            name: name.into(),
            started: Instant::now(),
            alive: AtomicBool::new(true),
            busy: AtomicBool::new(false),
            changed_ms: AtomicU64::new(0),
            beats: AtomicU64::new(0),
        });
        if let Ok(mut parts) = self.parts.lock() {
            // A part registered again under the same name (a restarted worker) replaces
            // the one that stopped.
            parts.retain(|p| p.name != shared.name || p.alive.load(Ordering::Relaxed));
            parts.push(Arc::clone(&shared));
        }
        Beat { shared }
    }

    /// Every registered part, in registration order; busy longer than `stall` is stuck.
    pub fn report(&self, stall: Duration) -> Vec<PartReport> {
        let Ok(parts) = self.parts.lock() else { return Vec::new() };
        parts
            .iter()
            .map(|p| {
                let now = u64::try_from(p.started.elapsed().as_millis()).unwrap_or(u64::MAX);
                let since_ms = now.saturating_sub(p.changed_ms.load(Ordering::Relaxed));
                let state = if !p.alive.load(Ordering::Relaxed) {
                    PartState::Stopped
                } else if !p.busy.load(Ordering::Relaxed) {
                    PartState::Idle
                } else if Duration::from_millis(since_ms) > stall {
                    PartState::Stuck
                } else {
                    PartState::Busy
                };
                PartReport { part: p.name.clone(), state, since_ms, beats: p.beats.load(Ordering::Relaxed) }
            })
            .collect()
    }
}

impl Beat {
    /// The worker took up work.
    pub fn busy(&self) {
        self.shared.beats.fetch_add(1, Ordering::Relaxed);
        self.shared.mark();
        self.shared.busy.store(true, Ordering::Relaxed);
    }

    /// The worker waits for more work.
    pub fn idle(&self) {
        self.shared.mark();
        self.shared.busy.store(false, Ordering::Relaxed);
    }
}

impl Drop for Beat {
    fn drop(&mut self) {
        self.shared.mark();
        self.shared.alive.store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_busy_stuck_and_stopped() {
        let health = Health::default();
        let beat = health.register("writer");
        let state = |h: &Health, stall| h.report(stall).first().map(|p| p.state);
        assert_eq!(state(&health, Duration::from_secs(1)), Some(PartState::Idle));
        beat.busy();
        assert_eq!(state(&health, Duration::from_secs(60)), Some(PartState::Busy));
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(state(&health, Duration::from_millis(5)), Some(PartState::Stuck));
        beat.idle();
        assert_eq!(state(&health, Duration::from_millis(5)), Some(PartState::Idle));
        drop(beat);
        assert_eq!(state(&health, Duration::from_secs(60)), Some(PartState::Stopped));
        // Registered again: the stopped entry is replaced.
        let _again = health.register("writer");
        let report = health.report(Duration::from_secs(1));
        assert_eq!(report.len(), 1);
        assert_eq!(report.first().map(|p| p.state), Some(PartState::Idle));
    }
}
