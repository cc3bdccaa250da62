//! The in-process store: counts hold per replica (use Redis to share them). Request rates
//! use `governor`'s keyed GCRA. Token rates use the same GCRA arithmetic written here,
//! because settlement must credit and debit a counter after the fact, which `governor`
//! cannot do (it only admits). Concurrency slots and budget/usage counters are plain maps.
//! One mutex makes the check-then-charge of a request atomic.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use super::plan::{Plan, RateCharge, Settlement};
use super::usage::{TenantUsage, by_model};
use super::{Admission, Periods, Verdict};

type Keyed =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// Settlements between sweeps of expired counters.
const SWEEP_EVERY: u64 = 4096;

pub struct LocalStore {
    origin: Instant,
    limiters: Mutex<HashMap<(u64, Duration), Arc<Keyed>>>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Token-rate GCRA: theoretical arrival time (ms since `origin`) per key.
    tats: HashMap<String, f64>,
    /// Last request-rate admission per key (remaining, at ms), for the admin view.
    rate_seen: HashMap<String, (u64, f64)>,
    in_flight: HashMap<String, u64>,
    /// Used amount and expiry per budget key.
    budgets: HashMap<String, (i64, f64)>,
    /// `tenant@period` → usage counters and expiry.
    usage: HashMap<String, (HashMap<String, i64>, f64)>,
    settlements: u64,
}

impl Default for LocalStore {
    fn default() -> Self {
        LocalStore {
            origin: Instant::now(),
            limiters: Mutex::default(),
            state: Mutex::default(),
        }
    }
}

/// GCRA admission of `amount` cells: the new arrival time when admitted.
fn gcra(
    tat: Option<f64>,
    now: f64,
    period: f64,
    limit: u64,
    amount: u64,
) -> (Admission, Option<f64>) {
    let interval = period / limit.max(1) as f64;
    let tat = tat.unwrap_or(now).max(now);
    let new_tat = tat + interval * amount as f64;
    let allow_at = new_tat - period;
    if now < allow_at {
        let remaining = ((period - (tat - now)) / interval + 1e-9).floor().max(0.0) as u64;
        let a = Admission {
            allowed: false,
            limit,
            remaining,
            reset: ms(tat - now),
            retry_after: Some(ms(allow_at - now).max(Duration::from_millis(1))),
        };
        return (a, None);
    }
    let remaining = ((period - (new_tat - now)) / interval + 1e-9)
        .floor()
        .max(0.0) as u64;
    let a = Admission {
        allowed: true,
        limit,
        remaining,
        reset: ms(new_tat - now),
        retry_after: None,
    };
    (a, Some(new_tat))
}

fn ms(v: f64) -> Duration {
    Duration::from_micros((v.max(0.0) * 1000.0).ceil() as u64)
}

impl LocalStore {
    fn now(&self) -> f64 {
        self.origin.elapsed().as_secs_f64() * 1000.0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn limiter(&self, limit: u64, period: Duration) -> Arc<Keyed> {
        let mut map = self.limiters.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((limit, period))
            .or_insert_with(|| {
                let n = NonZeroU32::new(u32::try_from(limit).unwrap_or(u32::MAX))
                    .unwrap_or(NonZeroU32::MIN);
                let quota = Quota::with_period(period / n.get())
                    .unwrap_or_else(|| Quota::per_second(n))
                    .allow_burst(n);
                Arc::new(RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>())
            })
            .clone()
    }

    fn charge_rate(&self, st: &mut State, c: &RateCharge, now: f64) -> Admission {
        let limiter = self.limiter(c.limit, c.period);
        let interval = c.period / u32::try_from(c.limit.max(1)).unwrap_or(u32::MAX);
        let admission = match limiter.check_key(&c.key) {
            Ok(snapshot) => {
                let remaining = u64::from(snapshot.remaining_burst_capacity()).min(c.limit);
                Admission {
                    allowed: true,
                    limit: c.limit,
                    remaining,
                    reset: interval * u32::try_from(c.limit - remaining).unwrap_or(u32::MAX),
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
        };
        let seen = (admission.remaining, now);
        match st.rate_seen.get_mut(&c.key) {
            Some(slot) => *slot = seen,
            None => {
                st.rate_seen.insert(c.key.clone(), seen);
            }
        }
        admission
    }

    fn peek_rate(st: &State, c: &RateCharge, now: f64) -> Admission {
        let interval = c.period.as_secs_f64() * 1000.0 / c.limit.max(1) as f64;
        let remaining = st.rate_seen.get(&c.key).map_or(c.limit, |(left, at)| {
            (left + ((now - at) / interval).floor() as u64).min(c.limit)
        });
        Admission {
            allowed: remaining > 0,
            limit: c.limit,
            remaining,
            reset: ms((c.limit - remaining) as f64 * interval),
            retry_after: None,
        }
    }

    pub fn check(&self, plan: &Plan) -> Verdict {
        self.decide(plan, true)
    }

    pub fn peek(&self, plan: &Plan) -> Verdict {
        self.decide(plan, false)
    }

    fn decide(&self, plan: &Plan, charge: bool) -> Verdict {
        let now = self.now();
        let mut st = self.lock();
        let tokens: Vec<(Admission, Option<f64>)> = plan
            .tokens
            .iter()
            .map(|t| {
                let ms_period = t.period.as_secs_f64() * 1000.0;
                gcra(
                    st.tats.get(&t.key).copied(),
                    now,
                    ms_period,
                    t.limit,
                    t.amount,
                )
            })
            .collect();
        let in_flight: Vec<u64> = plan
            .concurrent
            .iter()
            .map(|l| st.in_flight.get(&l.key).copied().unwrap_or(0))
            .collect();
        let used: Vec<i64> = plan
            .budgets
            .iter()
            .map(|b| match st.budgets.get(&b.key) {
                Some((used, expires)) if *expires > now => *used,
                _ => 0,
            })
            .collect();
        let mut allowed = tokens.iter().all(|(a, _)| a.allowed);
        let concurrent: Vec<(bool, u64)> = if charge {
            plan.concurrent
                .iter()
                .zip(&in_flight)
                .map(|(l, n)| (*n < l.limit, *n))
                .collect()
        } else {
            in_flight.iter().map(|n| (true, *n)).collect()
        };
        let budgets: Vec<(bool, i64)> = plan
            .budgets
            .iter()
            .zip(&used)
            .map(|(b, u)| (!charge || u.saturating_add(b.amount) <= b.limit, *u))
            .collect();
        allowed &= concurrent.iter().all(|(ok, _)| *ok) && budgets.iter().all(|(ok, _)| *ok);
        let requests: Vec<Admission> = if charge && allowed {
            plan.requests
                .iter()
                .map(|c| self.charge_rate(&mut st, c, now))
                .collect()
        } else {
            plan.requests
                .iter()
                .map(|c| Self::peek_rate(&st, c, now))
                .collect()
        };
        allowed &= requests.iter().all(|a| a.allowed);
        let mut verdict = Verdict {
            allowed: allowed && charge,
            requests,
            tokens: tokens.iter().map(|(a, _)| a.clone()).collect(),
            concurrent,
            budgets,
        };
        if !(charge && allowed) {
            return verdict;
        }
        for (t, (_, new_tat)) in plan.tokens.iter().zip(&tokens) {
            if let Some(tat) = *new_tat {
                match st.tats.get_mut(&t.key) {
                    Some(slot) => *slot = tat,
                    None => {
                        st.tats.insert(t.key.clone(), tat);
                    }
                }
            }
        }
        for (l, slot) in plan.concurrent.iter().zip(verdict.concurrent.iter_mut()) {
            *st.in_flight.entry(l.key.clone()).or_default() += 1;
            slot.1 += 1;
        }
        for (b, slot) in plan.budgets.iter().zip(verdict.budgets.iter_mut()) {
            let expires = now + b.ttl().as_secs_f64() * 1000.0;
            let entry = st.budgets.entry(b.key.clone()).or_insert((0, expires));
            if entry.1 <= now {
                *entry = (0, expires);
            }
            entry.0 += b.amount;
            slot.1 = entry.0;
        }
        verdict
    }

    pub fn settle(&self, s: &Settlement) -> Vec<i64> {
        let now = self.now();
        let mut st = self.lock();
        for t in &s.tokens {
            let period = t.period.as_secs_f64() * 1000.0;
            let interval = period / t.limit.max(1) as f64;
            let tat = st.tats.get(&t.key).copied().unwrap_or(now).max(now);
            st.tats
                .insert(t.key.clone(), (tat + t.delta as f64 * interval).max(now));
        }
        let used = s
            .budgets
            .iter()
            .map(|b| {
                let expires = now + b.ttl.as_secs_f64() * 1000.0;
                let entry = st.budgets.entry(b.key.clone()).or_insert((0, expires));
                entry.0 += b.delta;
                entry.0
            })
            .collect();
        for (key, _) in &s.leases {
            if let Some(n) = st.in_flight.get_mut(key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    st.in_flight.remove(key);
                }
            }
        }
        if let Some(u) = &s.usage {
            for (period, ttl) in [(&u.day, u.day_ttl), (&u.month, u.month_ttl)] {
                let expires = now + ttl.as_secs_f64() * 1000.0;
                let (fields, _) = st
                    .usage
                    .entry(format!("{}@{period}", u.tenant))
                    .or_insert_with(|| (HashMap::new(), expires));
                for (name, v) in u.fields() {
                    *fields.entry(name).or_default() += v;
                }
            }
        }
        st.settlements += 1;
        if st.settlements.is_multiple_of(SWEEP_EVERY) {
            self.sweep(&mut st, now);
        }
        used
    }

    /// Forgets counters that are back to full: expired token and budget state, and
    /// `governor`'s per-key request-rate state, which otherwise grows with every subject
    /// or client address ever seen.
    fn sweep(&self, st: &mut State, now: f64) {
        st.tats.retain(|_, tat| *tat > now);
        st.budgets.retain(|_, (_, expires)| *expires > now);
        st.usage.retain(|_, (_, expires)| *expires > now);
        st.rate_seen.clear();
        let limiters = self.limiters.lock().unwrap_or_else(|p| p.into_inner());
        for limiter in limiters.values() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    pub fn usage(&self, tenant: &str, periods: &Periods) -> TenantUsage {
        let st = self.lock();
        let read = |period: &str| {
            st.usage
                .get(&format!("{tenant}@{period}"))
                .map(|(fields, _)| by_model(fields))
                .unwrap_or_default()
        };
        TenantUsage {
            day: periods.day.clone(),
            month: periods.month.clone(),
            today: read(&periods.day),
            this_month: read(&periods.month),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::plan::{BudgetCharge, LeaseCharge, TokenCharge, TokenDelta};
    use super::*;

    fn rate(key: &str, limit: u64) -> RateCharge {
        RateCharge {
            key: key.into(),
            limit,
            period: Duration::from_secs(60),
        }
    }

    /// Request-rate state of keys that are back to full is forgotten at a sweep: a flood
    /// of new subjects or addresses does not grow memory for ever.
    #[test]
    fn request_rate_state_of_idle_keys_is_pruned() {
        let store = LocalStore::default();
        let plan = |i: usize| Plan {
            requests: vec![RateCharge {
                key: format!("rl:r0:subject:{i}"),
                limit: 1000,
                period: Duration::from_millis(50),
            }],
            ..Default::default()
        };
        for i in 0..5000 {
            assert!(store.check(&plan(i)).allowed);
        }
        let limiter = store.limiter(1000, Duration::from_millis(50));
        assert_eq!(limiter.len(), 5000);
        std::thread::sleep(Duration::from_millis(120));
        let mut st = store.lock();
        store.sweep(&mut st, store.now());
        drop(st);
        assert_eq!(limiter.len(), 0, "keys back to full are forgotten");
    }

    #[test]
    fn admits_up_to_the_limit_then_refuses() {
        let s = LocalStore::default();
        let plan = Plan {
            requests: vec![rate("k", 3)],
            ..Default::default()
        };
        let remaining: Vec<u64> = (0..3)
            .map(|_| s.check(&plan))
            .map(|v| {
                assert!(v.allowed);
                v.requests[0].remaining
            })
            .collect();
        assert_eq!(remaining, vec![2, 1, 0]);
        let refused = s.check(&plan);
        assert!(!refused.allowed);
        let wait = refused.requests[0].retry_after.unwrap();
        assert!(
            wait > Duration::from_secs(15) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        let other = Plan {
            requests: vec![rate("other", 3)],
            ..Default::default()
        };
        assert!(s.check(&other).allowed, "keys are counted separately");
    }

    #[test]
    fn tokens_are_charged_then_settled_with_credit_and_debit() {
        let s = LocalStore::default();
        let charge = |amount| Plan {
            tokens: vec![TokenCharge {
                key: "t".into(),
                limit: 1000,
                period: Duration::from_secs(3600),
                amount,
            }],
            ..Default::default()
        };
        let v = s.check(&charge(600));
        assert!(v.allowed);
        assert_eq!(v.tokens[0].remaining, 400);
        assert!(!s.check(&charge(500)).allowed, "600 + 500 > 1000");
        // The request used 100 tokens, not 600: 500 are credited.
        let delta = |delta| Settlement {
            tokens: vec![TokenDelta {
                key: "t".into(),
                limit: 1000,
                period: Duration::from_secs(3600),
                delta,
                fresh: 0,
            }],
            ..Default::default()
        };
        s.settle(&delta(-500));
        assert_eq!(s.peek(&charge(0)).tokens[0].remaining, 900);
        assert!(s.check(&charge(500)).allowed);
        // A debit beyond the limit leaves the counter in debt.
        s.settle(&delta(800));
        assert!(!s.check(&charge(1)).allowed);
        assert!(
            !s.check(&charge(2000)).allowed,
            "more than the limit never fits"
        );
    }

    #[test]
    fn concurrency_slots_and_budgets_are_all_or_nothing() {
        let s = LocalStore::default();
        let plan = |amount| Plan {
            concurrent: vec![LeaseCharge {
                key: "c".into(),
                limit: 1,
                id: "r1".into(),
                ttl: Duration::from_secs(60),
            }],
            budgets: vec![BudgetCharge {
                key: "b@2026-11".into(),
                limit: 100,
                amount,
                usd: false,
                left: Duration::from_secs(60),
            }],
            ..Default::default()
        };
        let v = s.check(&plan(60));
        assert!(v.allowed);
        assert_eq!(v.budgets[0].1, 60);
        let busy = s.check(&plan(10));
        assert!(!busy.allowed && !busy.concurrent[0].0);
        s.settle(&Settlement {
            leases: vec![("c".into(), "r1".into())],
            ..Default::default()
        });
        let over = s.check(&plan(41));
        assert!(!over.allowed && !over.budgets[0].0 && over.concurrent[0].0);
        assert_eq!(
            s.peek(&plan(0)).concurrent[0].1,
            0,
            "a refusal holds no slot"
        );
        assert!(s.check(&plan(40)).allowed, "exactly up to the cap");
    }
}
