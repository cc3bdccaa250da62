//! The PII stage's answer filter: personal data the model wrote is withheld (output
//! scanning) and placeholders are restored, in whole answers and stream events; what
//! scanning found is counted once, when the answer ends.

use super::{AnswerFilter, WholeAnswer};
use crate::pii::response::{Answer, AnswerStream};
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
}

impl Pii {
    pub fn new(answer: Answer) -> Pii {
        Pii {
            state: State::Whole(answer),
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

    fn event(&mut self, data: String, _ctx: &mut RequestCtx) -> Option<String> {
        let Some(stream) = self.stream() else {
            return Some(data);
        };
        Some(stream.event(&data).unwrap_or(data))
    }

    fn end(&mut self, finished: bool, ctx: &mut RequestCtx) -> Vec<String> {
        match &mut self.state {
            State::Whole(answer) => {
                redaction::record(ctx, &answer.counts, Stage::Answer);
                Vec::new()
            }
            State::Stream(stream) => {
                let held = if finished { stream.finish() } else { None };
                redaction::record(ctx, stream.counts(), Stage::Answer);
                held.into_iter().collect()
            }
            State::Moving => Vec::new(),
        }
    }
}
