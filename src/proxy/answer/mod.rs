//! The way out: every transform of a provider's answer is an [`AnswerFilter`] in one
//! ordered [`Chain`] — readers first (the provider's usage, the tools it called and the
//! text the audit record captures, all as the provider wrote them), then rewriters (usage
//! the client did not ask for hidden, personal data the model wrote withheld, placeholders
//! restored). A whole answer is parsed at most once for the chain; a stream is parsed
//! once as server-sent events and each event passes the chain; a chain without rewriters
//! lets the provider's bytes through unchanged. The responder (`respond`) only writes
//! bytes: it knows no filter.

mod pii;
mod usage;
pub mod watch;

use bytes::Bytes;
use serde_json::Value;
use smallvec::SmallVec;

use super::context::RequestCtx;
pub use crate::openai::sse::Event;

pub use watch::Capture;

/// What a filter makes of one stream event: usually the event itself, none when it drops
/// it, two when it releases held text first.
pub type Events = SmallVec<[Event; 1]>;

/// One transform of the answer. Filters learn what the request's report needs through
/// the request context.
pub trait AnswerFilter: Send {
    /// Whether the filter can change what the client sees.
    fn rewrites(&self) -> bool;

    /// A whole JSON answer (a 2xx body).
    fn body(&mut self, answer: &mut WholeAnswer, ctx: &mut RequestCtx);

    /// One stream event (its name, if any, travels with it).
    fn event(&mut self, event: Event, ctx: &mut RequestCtx) -> Events;

    /// The answer is over — `finished` when the stream ended normally, not when the
    /// client went away. Returns the events to send before the stream's end.
    /// Called exactly once per answer.
    fn end(&mut self, finished: bool, ctx: &mut RequestCtx) -> Vec<Event> {
        let _ = (finished, ctx);
        Vec::new()
    }
}

/// A whole answer, parsed when a filter first needs the JSON, written back only when a
/// filter changed it.
pub struct WholeAnswer {
    bytes: Bytes,
    parsed: Option<Option<Value>>,
    changed: bool,
}

impl WholeAnswer {
    fn new(bytes: Bytes) -> WholeAnswer {
        WholeAnswer {
            bytes,
            parsed: None,
            changed: false,
        }
    }

    /// The answer as the provider sent it.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The answer's JSON (`None` when it is not JSON).
    pub fn json(&mut self) -> Option<&Value> {
        let bytes = &self.bytes;
        self.parsed
            .get_or_insert_with(|| serde_json::from_slice(bytes).ok())
            .as_ref()
    }

    /// Lets `edit` change the JSON; the answer is written anew when it says it did.
    pub fn edit(&mut self, edit: impl FnOnce(&mut Value) -> bool) {
        self.json();
        if let Some(Some(v)) = self.parsed.as_mut() {
            self.changed |= edit(v);
        }
    }

    fn into_bytes(self) -> Bytes {
        match (self.changed, self.parsed) {
            (true, Some(Some(v))) => Bytes::from(v.to_string()),
            _ => self.bytes,
        }
    }
}

/// The filters of one answer, in order.
#[derive(Default)]
pub struct Chain {
    filters: Vec<Box<dyn AnswerFilter>>,
    ended: bool,
}

impl Chain {
    /// The chain for a request whose stages have run: usage (and, when Warden asked the
    /// provider for usage the client did not, its removal), the audit watch, PII.
    pub fn for_request(hide_usage: bool, pii: Option<crate::pii::response::Answer>) -> Chain {
        let mut filters: Vec<Box<dyn AnswerFilter>> = vec![Box::new(usage::Watch)];
        filters.push(Box::new(watch::Watch));
        if hide_usage {
            filters.push(Box::new(usage::Hide));
        }
        if let Some(answer) = pii {
            filters.push(Box::new(pii::Pii::new(answer)));
        }
        Chain {
            filters,
            ended: false,
        }
    }

    /// The PII filter only, for an answer whose usage was counted when it was made (a
    /// stored response read again).
    pub fn restoring(pii: Option<crate::pii::response::Answer>) -> Chain {
        let mut filters: Vec<Box<dyn AnswerFilter>> = Vec::new();
        if let Some(answer) = pii {
            filters.push(Box::new(pii::Pii::new(answer)));
        }
        Chain {
            filters,
            ended: false,
        }
    }

    /// The readers only — usage and the tools called — for an answer no client sees (a
    /// model call inside the tool loop Warden runs).
    pub fn readers() -> Chain {
        Chain {
            filters: vec![Box::new(usage::Watch), Box::new(watch::Watch)],
            ended: false,
        }
    }

    /// Whether any filter changes what the client sees (otherwise a stream's bytes pass
    /// as the provider sent them).
    pub fn rewrites(&self) -> bool {
        self.filters.iter().any(|f| f.rewrites())
    }

    /// A whole answer through every filter.
    pub fn body(&mut self, bytes: Bytes, ctx: &mut RequestCtx) -> Bytes {
        let mut answer = WholeAnswer::new(bytes);
        for f in &mut self.filters {
            f.body(&mut answer, ctx);
        }
        self.end(true, ctx);
        answer.into_bytes()
    }

    /// One stream event through every filter: what the client is to see of it.
    pub fn event(&mut self, event: Event, ctx: &mut RequestCtx) -> Events {
        pass(&mut self.filters, event, ctx)
    }

    /// Ends the answer once (later calls do nothing): the events the filters still hold,
    /// each passed through the filters after it.
    pub fn end(&mut self, finished: bool, ctx: &mut RequestCtx) -> Vec<Event> {
        if self.ended {
            return Vec::new();
        }
        self.ended = true;
        let mut out = Vec::new();
        for i in 0..self.filters.len() {
            let Some((filter, later)) = self.filters.get_mut(i..).and_then(|f| f.split_first_mut())
            else {
                continue;
            };
            for held in filter.end(finished, ctx) {
                out.extend(pass(later, held, ctx));
            }
        }
        out
    }
}

/// One event through `filters` in order, each filter seeing what the one before made.
fn pass(filters: &mut [Box<dyn AnswerFilter>], event: Event, ctx: &mut RequestCtx) -> Events {
    let mut events: Events = smallvec::smallvec![event];
    for f in filters {
        let mut next = Events::new();
        for e in events.drain(..) {
            next.extend(f.event(e, ctx));
        }
        events = next;
    }
    events
}
