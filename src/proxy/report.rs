//! The end of every request, whatever path it took (answered, refused, failed, client
//! gone, stream broken) — pingora's logging phase. The record is written exactly once:
//! its token ([`Unreported`]) is created with the request and consumed by [`record`],
//! which the responder calls before an answer's last bytes, and [`finish`] calls for a
//! request that never got that far. [`finish`] then settles the limits and writes the
//! metrics, the access line and the trace's spans, once, at the end.

use std::sync::Arc;

use super::context::RequestCtx;
use super::rescue::Failure;
use super::{Gateway, accounting, audit_entry};
use crate::audit::Audit;
use crate::telemetry::trace::Stage;

/// The right to write a request's record, held until it is written.
#[derive(Debug)]
pub struct Unreported {
    /// Where the record goes; `None` without an audit log.
    audit: Option<Arc<Audit>>,
}

impl Unreported {
    pub fn new(audit: Option<Arc<Audit>>) -> Unreported {
        Unreported { audit }
    }
}

/// Completes the usage (the provider's, or Warden's count of a stream) and its price,
/// then writes the record with the status being answered. Does nothing once the record
/// is written (or given up); an error means the record could not be written.
pub fn record(ctx: &mut RequestCtx) -> Result<(), Failure> {
    let Some(token) = ctx.unreported.take() else {
        return Ok(());
    };
    accounting::complete(ctx);
    match &token.audit {
        Some(audit) => {
            let status = ctx.answered.status;
            let started = std::time::Instant::now();
            let written = audit_entry::append(audit, ctx, status);
            if let Some(trace) = ctx.trace.as_mut() {
                let error = written.is_err().then_some("audit_unavailable");
                trace.interval(Stage::Audit, started, error);
            }
            written
        }
        None => Ok(()),
    }
}

/// Gives up the record: a refusal the audit log has no room for.
pub fn unrecordable(ctx: &mut RequestCtx) {
    ctx.unreported = None;
}

/// The end of the request: the record (when no answer wrote it), the settlement of its
/// limits, its metrics and its access line.
pub fn finish(gw: &Arc<Gateway>, ctx: &mut RequestCtx) {
    // A request that ended before its answer was written (client gone) still gets one.
    let _ = record(ctx);
    accounting::settle(gw, ctx);
    super::log::finish(ctx);
    super::trace::finish(gw, ctx);
}
