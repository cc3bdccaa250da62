//! Readiness and draining: counts requests in flight and tells whether Warden is shutting
//! down, for `/readyz` and the graceful exit.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::telemetry::metrics;

#[derive(Debug, Default)]
pub struct Lifecycle {
    in_flight: AtomicUsize,
    draining: AtomicBool,
}

/// Held while a request is handled.
pub struct InFlightGuard<'a>(&'a Lifecycle);

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        metrics().in_flight.dec();
    }
}

impl Lifecycle {
    pub fn enter(&self) -> InFlightGuard<'_> {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        metrics().in_flight.inc();
        InFlightGuard(self)
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Marks Warden as draining; returns the number of requests in flight.
    pub fn start_draining(&self) -> usize {
        self.draining.store(true, Ordering::Release);
        self.in_flight()
    }

    /// Blocks until nothing is in flight (true) or `limit` has passed (false).
    pub fn wait_idle(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.in_flight() == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_drains() {
        let l = Lifecycle::default();
        let g = l.enter();
        assert_eq!(l.start_draining(), 1);
        assert!(l.is_draining());
        assert!(!l.wait_idle(Duration::from_millis(30)));
        drop(g);
        assert!(l.wait_idle(Duration::from_millis(30)));
    }
}
