//! Cumulative caps on a tool's numeric argument (e.g. refunds per subject per day in
//! USD), so a large call cannot be split into small ones. Sums are counted in the shared
//! state store (every replica sees them) in the limits' calendar periods (UTC day and
//! month) and keyed like limits (tenant, pseudonymous subject id). A call is charged before
//! it runs and released when it did not run; a repeat of a call under the same
//! idempotency key (a retried write, which the backend runs once) is charged once.

use serde_json::{Map, Value};

use super::Tool;
use super::model::{CapKey, CapPeriod};
use crate::state::{Key, StateStore, parts_digest, tag};

/// The calendar periods a cap counts in (the limits' UTC day and month) and how long
/// each has left.
#[derive(Debug, Clone)]
pub struct Window<'a> {
    pub day: (&'a str, std::time::Duration),
    pub month: (&'a str, std::time::Duration),
}

/// What a call was charged, to release when it did not run.
#[derive(Debug, Default)]
pub struct Charged {
    entries: Vec<(String, i64, std::time::Duration)>,
    /// The mark that this call's idempotency key has been charged.
    seen: Option<String>,
}

/// Why a call may not run.
#[derive(Debug, Clone, PartialEq)]
pub enum CapError {
    /// The sum would pass the cap: its name, limit and what is left in this period.
    Exceeded {
        cap: String,
        limit: f64,
        left: f64,
        per: &'static str,
    },
    /// The state store did not answer: caps fail closed.
    Unavailable,
}

fn counter_name(
    tool: &Tool,
    cap: &str,
    keys: &[CapKey],
    who: (Option<&str>, &str),
    period: &str,
) -> String {
    let mut name = format!("{}:{}:{cap}:", tag(who.0), tool.def.name);
    for k in keys {
        match k {
            CapKey::Tenant => name.push_str("t="),
            CapKey::Subject => {
                name.push_str("s=");
                name.push_str(who.1);
            }
        }
        name.push(':');
    }
    name.push_str(period);
    name
}

/// Charges every cap of `tool` with the call's argument; refuses (and charges nothing)
/// when one would be passed — unless a person approved this very call (`approved`): it
/// is charged and runs. `subject` is the pseudonymous id limits key subjects by. A call
/// whose idempotency key (`once`) was charged already is not charged again.
pub async fn charge(
    state: &StateStore,
    window: &Window<'_>,
    tool: &Tool,
    args: &Map<String, Value>,
    who: (Option<&str>, &str),
    call: (Option<&str>, bool),
) -> Result<Charged, CapError> {
    let (tenant, subject) = who;
    let (once, approved) = call;
    let mut charged = Charged::default();
    if tool.def.caps.is_empty() {
        return Ok(charged);
    }
    if let Some(key) = once {
        let mark = format!(
            "{}:seen:{}:{}",
            tag(tenant),
            tool.def.name,
            parts_digest(&[key.as_bytes()])
        );
        let first = state
            .mark_once(Key::new("caps", &mark), window.month.1)
            .await
            .map_err(|_| CapError::Unavailable)?;
        if !first {
            return Ok(charged);
        }
        charged.seen = Some(mark);
    }
    for cap in &tool.def.caps {
        // The schema requires a number; an absent argument adds nothing.
        let amount = args.get(&cap.sum).and_then(Value::as_f64).unwrap_or(0.0);
        let cents = (amount.max(0.0) * 100.0).round() as i64;
        let ((period, ttl), per) = match cap.per {
            CapPeriod::Day => (window.day, "day"),
            CapPeriod::Month => (window.month, "month"),
        };
        let name = counter_name(tool, &cap.name, &cap.key, (tenant, subject), period);
        let total = match state.add(Key::new("caps", &name), cents, ttl).await {
            Ok(t) => t,
            Err(_) => {
                release(state, charged).await;
                return Err(CapError::Unavailable);
            }
        };
        let limit = (cap.limit * 100.0).round() as i64;
        if total > limit && !approved {
            let _ = state.add(Key::new("caps", &name), -cents, ttl).await;
            release(state, charged).await;
            return Err(CapError::Exceeded {
                cap: cap.name.clone(),
                limit: cap.limit,
                left: ((limit - (total - cents)).max(0) as f64) / 100.0,
                per,
            });
        }
        charged.entries.push((name, cents, ttl));
    }
    Ok(charged)
}

/// Gives back what a call that did not run was charged.
pub async fn release(state: &StateStore, charged: Charged) {
    for (name, cents, ttl) in charged.entries {
        let _ = state.add(Key::new("caps", &name), -cents, ttl).await;
    }
    if let Some(mark) = charged.seen {
        // Replaced by a value that expires at once: the key's next call is charged.
        let _ = state
            .put(
                Key::new("caps", &mark),
                b"",
                std::time::Duration::from_millis(1),
            )
            .await;
    }
}
