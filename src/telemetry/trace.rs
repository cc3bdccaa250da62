//! Request traces (OpenTelemetry, W3C Trace Context). A request takes its place in a trace
//! from the client's `traceparent`/`tracestate`, or begins one; the sampler (the client's
//! sampled flag when it sent one, otherwise the configured share of trace ids) decides
//! once whether it is recorded. Stages mark the instant they begin on the request; calls
//! Warden makes for it (provider attempts, tool backends) carry the trace on in their
//! headers and come back as child spans of the stage that made them. Spans are built once,
//! when the request ends, and queued for the export thread: a request never waits on a
//! collector, and a full queue drops spans.
//!
//! Which attributes a span carries is the caller's choice (`proxy::trace`); none carries
//! prompt or answer text, tool arguments or personal data.

use std::borrow::Cow;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use http::{HeaderMap, HeaderValue};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, IdGenerator, RandomIdGenerator, Sampler,
    SamplingDecision, ShouldSample, SpanData, SpanEvents, SpanLinks, SpanProcessor,
};

use crate::config::TracesConfig;

struct Traces {
    processor: BatchSpanProcessor,
    sampler: Sampler,
    ids: RandomIdGenerator,
    propagator: TraceContextPropagator,
    scope: InstrumentationScope,
}

static TRACES: OnceLock<Traces> = OnceLock::new();

/// Starts exporting traces as `config` says. Called once, at start-up.
pub fn init(config: &TracesConfig) -> anyhow::Result<()> {
    let exporter = super::export::exporter(config)?;
    let batch = BatchConfigBuilder::default()
        .with_max_queue_size(config.max_queue_spans)
        .with_max_export_batch_size(config.max_export_batch_spans)
        .with_scheduled_delay(Duration::from_millis(config.export_interval_ms))
        .build();
    let mut processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(batch)
        .build();
    processor.set_resource(
        &Resource::builder_empty()
            .with_service_name(config.service_name.clone())
            .with_attributes([KeyValue::new("service.version", env!("CARGO_PKG_VERSION"))])
            .build(),
    );
    let traces = Traces {
        processor,
        sampler: Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(config.sampling_ratio))),
        ids: RandomIdGenerator::default(),
        propagator: TraceContextPropagator::new(),
        scope: InstrumentationScope::builder("warden")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build(),
    };
    TRACES
        .set(traces)
        .map_err(|_| anyhow::anyhow!("traces are already being exported"))
}

/// Exports what is queued, waiting at most `limit` (shutdown).
pub fn flush(limit: Duration) {
    if let Some(t) = TRACES.get()
        && let Err(e) = t.processor.shutdown_with_timeout(limit)
    {
        tracing::warn!(error = %e, "traces not all exported at shutdown");
    }
}

/// A stage of a request, as a span's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Authenticate,
    Read,
    Authorize,
    Tools,
    Redact,
    Admit,
    Dispatch,
    Answer,
    Execute,
    Audit,
}

impl Stage {
    /// Every stage, in the order a request can go through them.
    pub const ALL: [Stage; 10] = [
        Stage::Authenticate,
        Stage::Read,
        Stage::Authorize,
        Stage::Tools,
        Stage::Redact,
        Stage::Admit,
        Stage::Dispatch,
        Stage::Answer,
        Stage::Execute,
        Stage::Audit,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Authenticate => "warden.authn",
            Stage::Read => "warden.read",
            Stage::Authorize => "warden.authz",
            Stage::Tools => "warden.tools",
            Stage::Redact => "warden.redact",
            Stage::Admit => "warden.admission",
            Stage::Dispatch => "warden.dispatch",
            Stage::Answer => "warden.answer",
            Stage::Execute => "warden.tool_execution",
            Stage::Audit => "warden.audit",
        }
    }
}

/// A finished span below the request's.
#[derive(Debug)]
pub struct Span {
    pub name: Cow<'static, str>,
    pub kind: SpanKind,
    pub id: SpanId,
    pub parent: SpanId,
    /// The stage this span is, for the attributes the caller adds at the end.
    pub stage: Option<Stage>,
    pub start: Instant,
    pub end: Instant,
    pub attributes: Vec<KeyValue>,
    /// `error.type` and an error status.
    pub error: Option<Cow<'static, str>>,
}

/// The request's own span, described at its end.
#[derive(Debug, Default)]
pub struct Root {
    pub name: Cow<'static, str>,
    pub attributes: Vec<KeyValue>,
    /// Why the request failed (`error.type`); `failed` also sets an error status, on it
    /// and on the stage it failed in.
    pub error: Option<Cow<'static, str>>,
    pub failed: bool,
}

/// Where a request sits in its trace, and what it has done so far.
#[derive(Debug)]
pub struct RequestTrace {
    /// The request's span: the trace id, its own span id, the sampled flag, `tracestate`.
    root: SpanContext,
    /// The client's span, when it sent one; for a nested request, the span it was made
    /// under.
    parent: Option<SpanId>,
    /// A request Warden made while handling another (a tool loop's model call).
    nested: bool,
    started: Instant,
    started_at: SystemTime,
    /// The stage under way: which, its span id, since when.
    open: Option<(Stage, SpanId, Instant)>,
    spans: Vec<Span>,
}

impl RequestTrace {
    /// The request's place in a trace, from the client's headers; `None` when traces are
    /// not configured.
    pub fn begin(headers: &HeaderMap, started: Instant, started_at: SystemTime) -> Option<Self> {
        let t = TRACES.get()?;
        let cx = t
            .propagator
            .extract(&opentelemetry_http::HeaderExtractor(headers));
        let remote = cx.span().span_context().clone();
        let (trace_id, parent) = if remote.is_valid() {
            (remote.trace_id(), Some(remote.span_id()))
        } else {
            (t.ids.new_trace_id(), None)
        };
        let sampling =
            t.sampler
                .should_sample(Some(&cx), trace_id, "request", &SpanKind::Server, &[], &[]);
        let sampled = sampling.decision == SamplingDecision::RecordAndSample;
        let root = SpanContext::new(
            trace_id,
            t.ids.new_span_id(),
            TraceFlags::default().with_sampled(sampled),
            false,
            sampling.trace_state,
        );
        Some(RequestTrace {
            root,
            parent,
            nested: false,
            started,
            started_at,
            open: None,
            spans: Vec::new(),
        })
    }

    /// A request made while handling this one, under the stage under way: it is
    /// reported as a span of its own, with its stages below it.
    pub fn nested(&self, started: Instant, started_at: SystemTime) -> RequestTrace {
        let parent = self.open.map_or(self.root.span_id(), |(_, id, _)| id);
        let id = TRACES
            .get()
            .map_or(SpanId::INVALID, |t| t.ids.new_span_id());
        RequestTrace {
            root: SpanContext::new(
                self.root.trace_id(),
                id,
                self.root.trace_flags(),
                false,
                self.root.trace_state().clone(),
            ),
            parent: Some(parent),
            nested: true,
            started,
            started_at,
            open: None,
            spans: Vec::new(),
        }
    }

    pub fn sampled(&self) -> bool {
        self.root.is_sampled()
    }

    pub fn trace_id(&self) -> TraceId {
        self.root.trace_id()
    }

    /// Ends the stage under way and begins `stage` (nothing when the request is not
    /// recorded: its calls are then made under the request's span).
    pub fn stage(&mut self, stage: Stage) {
        if !self.sampled() {
            return;
        }
        let now = Instant::now();
        self.close(now);
        let id = TRACES
            .get()
            .map_or(SpanId::INVALID, |t| t.ids.new_span_id());
        self.open = Some((stage, id, now));
    }

    fn close(&mut self, at: Instant) {
        if let Some((stage, id, start)) = self.open.take()
            && self.sampled()
        {
            self.spans.push(Span {
                name: Cow::Borrowed(stage.name()),
                kind: SpanKind::Internal,
                id,
                parent: self.root.span_id(),
                stage: Some(stage),
                start,
                end: at,
                attributes: Vec::new(),
                error: None,
            });
        }
    }

    /// A stage that ran inside the one under way (the audit record, written before an
    /// answer's last bytes), from `start` until now; `error` when it failed.
    pub fn interval(&mut self, stage: Stage, start: Instant, error: Option<&'static str>) {
        if let Some(t) = TRACES.get().filter(|_| self.sampled()) {
            self.spans.push(Span {
                name: Cow::Borrowed(stage.name()),
                kind: SpanKind::Internal,
                id: t.ids.new_span_id(),
                parent: self.root.span_id(),
                stage: Some(stage),
                start,
                end: Instant::now(),
                attributes: Vec::new(),
                error: error.map(Cow::Borrowed),
            });
        }
    }

    /// What an outbound call needs to join the trace under the stage under way.
    pub fn carrier(&self) -> Carrier {
        let parent = self.open.map_or(self.root.span_id(), |(_, id, _)| id);
        Carrier {
            trace_id: self.root.trace_id(),
            parent,
            flags: self.root.trace_flags(),
            state: self.root.trace_state().header(),
        }
    }

    /// Adds a span an outbound call finished (dropped unless the request is sampled).
    pub fn add(&mut self, span: Span) {
        if self.sampled() {
            self.spans.push(span);
        }
    }

    /// Ends the request at `end` and queues its spans for export: the stage under way
    /// closes, each stage span gets `stage_attributes`, and a failure marks the stage it
    /// happened in.
    pub fn finish(
        mut self,
        end: Instant,
        root: Root,
        stage_attributes: impl Fn(Stage) -> Vec<KeyValue>,
    ) {
        let failed_in = self.open.map(|(stage, ..)| stage);
        self.close(end);
        let Some(t) = TRACES.get().filter(|_| self.sampled()) else {
            return;
        };
        let at = |i: Instant| self.started_at + i.saturating_duration_since(self.started);
        let context = |id: SpanId| {
            SpanContext::new(
                self.root.trace_id(),
                id,
                self.root.trace_flags(),
                false,
                self.root.trace_state().clone(),
            )
        };
        let status = |error: &Option<Cow<'static, str>>, failed: bool| match error {
            Some(e) if failed => Status::error(e.clone()),
            _ => Status::Unset,
        };
        for mut span in std::mem::take(&mut self.spans) {
            let failed_here = root.failed && span.stage.is_some() && span.stage == failed_in;
            if let Some(stage) = span.stage {
                span.attributes.extend(stage_attributes(stage));
            }
            if failed_here && span.error.is_none() {
                span.error = root.error.clone();
            }
            if let Some(e) = &span.error {
                span.attributes
                    .push(KeyValue::new("error.type", e.to_string()));
            }
            let failed = span.error.is_some();
            t.processor.on_end(SpanData {
                span_context: context(span.id),
                parent_span_id: span.parent,
                parent_span_is_remote: false,
                span_kind: span.kind,
                name: span.name,
                start_time: at(span.start),
                end_time: at(span.end),
                status: status(&span.error, failed),
                attributes: span.attributes,
                dropped_attributes_count: 0,
                events: SpanEvents::default(),
                links: SpanLinks::default(),
                instrumentation_scope: t.scope.clone(),
            });
        }
        let mut attributes = root.attributes;
        if let Some(e) = &root.error {
            attributes.push(KeyValue::new("error.type", e.to_string()));
        }
        t.processor.on_end(SpanData {
            span_context: self.root.clone(),
            parent_span_id: self.parent.unwrap_or(SpanId::INVALID),
            parent_span_is_remote: self.parent.is_some() && !self.nested,
            span_kind: if self.nested {
                SpanKind::Internal
            } else {
                SpanKind::Server
            },
            name: root.name,
            start_time: self.started_at,
            end_time: at(end),
            status: status(&root.error, root.failed),
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            instrumentation_scope: t.scope.clone(),
        });
    }
}

/// The trace an outbound call continues: the trace id, the span it is made under, the
/// sampled flag and `tracestate`.
#[derive(Debug, Clone)]
pub struct Carrier {
    trace_id: TraceId,
    parent: SpanId,
    flags: TraceFlags,
    state: String,
}

impl Carrier {
    /// One outbound call: its own span id, and the headers that carry it.
    pub fn call(&self) -> CallTrace {
        let id = TRACES
            .get()
            .map_or(SpanId::INVALID, |t| t.ids.new_span_id());
        let traceparent = format!("00-{}-{}-{:02x}", self.trace_id, id, self.flags.to_u8());
        CallTrace {
            id,
            parent: self.parent,
            sampled: self.flags.is_sampled(),
            traceparent: HeaderValue::from_str(&traceparent).ok(),
            tracestate: (!self.state.is_empty())
                .then(|| HeaderValue::from_str(&self.state).ok())
                .flatten(),
        }
    }
}

/// An outbound call's place in the trace.
#[derive(Debug, Clone)]
pub struct CallTrace {
    id: SpanId,
    parent: SpanId,
    sampled: bool,
    traceparent: Option<HeaderValue>,
    tracestate: Option<HeaderValue>,
}

impl CallTrace {
    /// Whether the call's span is recorded (build its attributes only then).
    pub fn recorded(&self) -> bool {
        self.sampled
    }

    /// Sets `traceparent` (and `tracestate`) on the call's request.
    pub fn apply(&self, headers: &mut HeaderMap) {
        if let Some(v) = &self.traceparent {
            headers.insert("traceparent", v.clone());
        }
        if let Some(v) = &self.tracestate {
            headers.insert("tracestate", v.clone());
        }
    }

    /// The call's span, once it is over (`None` when the request is not sampled).
    pub fn finished(
        &self,
        name: impl Into<Cow<'static, str>>,
        start: Instant,
        attributes: Vec<KeyValue>,
        error: Option<Cow<'static, str>>,
    ) -> Option<Span> {
        self.sampled.then(|| Span {
            name: name.into(),
            kind: SpanKind::Client,
            id: self.id,
            parent: self.parent,
            stage: None,
            start,
            end: Instant::now(),
            attributes,
            error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_names_are_distinct() {
        let names: std::collections::BTreeSet<_> = Stage::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(names.len(), Stage::ALL.len());
    }

    #[test]
    fn a_carrier_writes_w3c_headers() {
        let carrier = Carrier {
            trace_id: TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            parent: SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            flags: TraceFlags::SAMPLED,
            state: "vendor=abc".into(),
        };
        let call = carrier.call();
        let mut headers = HeaderMap::new();
        call.apply(&mut headers);
        let tp = headers["traceparent"].to_str().unwrap();
        let parts: Vec<&str> = tp.split('-').collect();
        assert_eq!(parts.len(), 4, "{tp}");
        assert_eq!(parts[0], "00");
        assert_eq!(parts[1], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(parts[2].len(), 16);
        assert_eq!(parts[3], "01");
        assert_eq!(headers["tracestate"], "vendor=abc");
        let span = call
            .finished("chat m", Instant::now(), Vec::new(), None)
            .unwrap();
        assert_eq!(span.parent, carrier.parent);
        assert_eq!(span.kind, SpanKind::Client);
    }
}
