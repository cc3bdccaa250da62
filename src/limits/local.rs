//! In-process limits: one keyed GCRA limiter (`governor`) per distinct quota. Counts hold
//! per replica; use the Redis store to share them.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use super::{Admission, Charge, tightest};

type Keyed =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

#[derive(Default)]
pub struct LocalStore {
    limiters: Mutex<HashMap<(u32, Duration), Arc<Keyed>>>,
}

impl LocalStore {
    fn limiter(&self, limit: u32, period: Duration) -> Arc<Keyed> {
        let mut map = self.limiters.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((limit, period))
            .or_insert_with(|| {
                let n = NonZeroU32::new(limit).unwrap_or(NonZeroU32::MIN);
                let quota = Quota::with_period(period / n.get())
                    .unwrap_or_else(|| Quota::per_second(n))
                    .allow_burst(n);
                Arc::new(RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>())
            })
            .clone()
    }

    pub fn admit(&self, charges: &[Charge]) -> Admission {
        let all = charges
            .iter()
            .map(|c| {
                let limiter = self.limiter(c.limit, c.period);
                let interval = c.period / c.limit.max(1);
                match limiter.check_key(&c.key) {
                    Ok(snapshot) => {
                        let remaining = snapshot.remaining_burst_capacity();
                        Admission {
                            allowed: true,
                            limit: c.limit,
                            remaining,
                            reset: interval * (c.limit - remaining.min(c.limit)),
                            retry_after: None,
                        }
                    }
                    Err(not_until) => {
                        let wait = not_until.wait_time_from(limiter.clock().now());
                        Admission {
                            allowed: false,
                            limit: c.limit,
                            remaining: 0,
                            reset: c.period,
                            retry_after: Some(wait.max(Duration::from_millis(1))),
                        }
                    }
                }
            })
            .collect();
        tightest(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_the_limit_then_refuses() {
        let s = LocalStore::default();
        let c = vec![Charge {
            key: "k".into(),
            limit: 3,
            period: Duration::from_secs(60),
        }];
        let remaining: Vec<u32> = (0..3)
            .map(|_| s.admit(&c))
            .map(|a| {
                assert!(a.allowed);
                a.remaining
            })
            .collect();
        assert_eq!(remaining, vec![2, 1, 0]);
        let refused = s.admit(&c);
        assert!(!refused.allowed);
        let wait = refused.retry_after.unwrap();
        assert!(
            wait > Duration::from_secs(15) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        let other = vec![Charge {
            key: "other".into(),
            limit: 3,
            period: Duration::from_secs(60),
        }];
        assert!(s.admit(&other).allowed, "keys are counted separately");
    }
}
