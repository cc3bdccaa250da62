//! The PII stage's answer filter: personal data the model wrote is withheld (output
//! scanning) and placeholders are restored, in whole answers and stream events; what
//! scanning found is counted once, when the answer ends.

use super::{AnswerFilter, Event, Events, WholeAnswer};
use crate::pii::response::{Answer, AnswerStream, Released};
use crate::proxy::context::RequestCtx;
use crate::proxy::redaction::{self, Stage};

enum State {
    Whole(Answer),
    Stream(AnswerStream),
    /// Between turning a whole-answer filter into a stream filter.
    Moving,
}

pub struct Pii {
    state: State,
    /// The provider names its events (`event:` lines, the Responses API): events the
    /// filter adds are named too.
    named: bool,
}

impl Pii {
    pub fn new(answer: Answer) -> Pii {
        Pii {
            state: State::Whole(answer),
            named: false,
        }
    }

    fn stream(&mut self) -> Option<&mut AnswerStream> {
        if let State::Whole(_) = self.state
            && let State::Whole(answer) = std::mem::replace(&mut self.state, State::Moving)
        {
            self.state = State::Stream(answer.into_stream());
        }
        match &mut self.state {
            State::Stream(s) => Some(s),
            _ => None,
        }
    }
}

impl AnswerFilter for Pii {
    fn rewrites(&self) -> bool {
        true
    }

    fn body(&mut self, answer: &mut WholeAnswer, _ctx: &mut RequestCtx) {
        let State::Whole(filter) = &mut self.state else {
            return;
        };
        if filter.may_change(answer.bytes()) {
            answer.edit(|v| filter.value(v));
        }
    }

    fn event(&mut self, mut event: Event, _ctx: &mut RequestCtx) -> Events {
        self.named |= event.event.is_some();
        let named = self.named;
        let Some(stream) = self.stream() else {
            return smallvec::smallvec![event];
        };
        let Some((before, data)) = stream.event(&event.data) else {
            return smallvec::smallvec![event];
        };
        event.data = data;
        match before {
            Some(released) => smallvec::smallvec![added(released, named), event],
            None => smallvec::smallvec![event],
        }
    }

    fn end(&mut self, finished: bool, ctx: &mut RequestCtx) -> Vec<Event> {
        let named = self.named;
        match &mut self.state {
            State::Whole(answer) => {
                redaction::record(ctx, &answer.counts, Stage::Answer);
                Vec::new()
            }
            State::Stream(stream) => {
                let held = if finished {
                    stream.finish()
                } else {
                    Vec::new()
                };
                redaction::record(ctx, stream.counts(), Stage::Answer);
                held.into_iter().map(|r| added(r, named)).collect()
            }
            State::Moving => Vec::new(),
        }
    }
}

/// An event the filter adds, named by its type when the provider names its events.
fn added(released: Released, named: bool) -> Event {
    Event {
        event: released.kind.filter(|_| named).map(str::to_string),
        ..Event::data(released.data)
    }
}
