//! Prometheus metrics of the proxy, rendered in the text format at the admin `/metrics`.
//! Label values come from bounded sets: routes, configured models and providers, status
//! codes and error classes.

use std::sync::LazyLock;

use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    /// Requests answered, by route, model and HTTP status.
    pub requests: IntCounterVec,
    /// Time from request start to the end of the response, by route.
    pub request_duration: HistogramVec,
    /// Time until the first response byte was written, by route.
    pub time_to_first_byte: HistogramVec,
    /// Requests being handled right now.
    pub in_flight: IntGauge,
    /// Upstream answers, by provider and status.
    pub upstream_requests: IntCounterVec,
    /// Failed upstream attempts, by provider and error class.
    pub upstream_errors: IntCounterVec,
    /// Retries, by provider of the retried attempt.
    pub upstream_retries: IntCounterVec,
    /// Time until the provider's response headers.
    pub upstream_latency: HistogramVec,
    /// Streams that ended with an error event, by reason.
    pub stream_errors: IntCounterVec,
    /// Streams cut short by a client disconnect.
    pub client_disconnects: IntCounterVec,
    /// Authentication outcomes, by method or failure class.
    pub auth_results: IntCounterVec,
    /// JWKS refreshes, by result (`success`, `failure`, `rate_limited`).
    /// Trace spans handed to the collector, by result (`exported`, `failed`).
    pub trace_spans: IntCounterVec,
    /// TLS certificate reloads, by listener and result.
    pub tls_reloads: IntCounterVec,
    /// Approvals of every tenant waiting for a decision (read from the shared state at
    /// each scrape, so every replica reports the same number).
    pub approvals_pending: IntGauge,
    pub jwks_refreshes: IntCounterVec,
    /// Token introspection outcomes (`active`, `inactive`, `cache_hit`, `error`).
    pub introspection: IntCounterVec,
    /// Policy decisions, by effect and deciding rule.
    pub policy_decisions: IntCounterVec,
    /// Tool calls through Warden, by registry tool and outcome (`ok`, `rejected`,
    /// `timeout`, `unreachable`, …, `approval_required`).
    pub tool_calls: IntCounterVec,
    /// Semantic tool selections, by outcome (`offered`, `none`, `error`).
    pub tool_selections: IntCounterVec,
    /// Time to embed a message and rank the tools.
    pub tool_selection_seconds: HistogramVec,
    /// Rate-limit admissions, by profile and outcome (`allowed`, `limited`).
    pub rate_limit_decisions: IntCounterVec,
    /// Rate-limit store failures (Redis unreachable or slow).
    pub rate_limit_store_errors: IntCounter,
    /// Refusals by profile and what refused (`requests`, `tokens`, `concurrent`, `budget`).
    pub limit_refusals: IntCounterVec,
    /// Budget soft thresholds crossed, by profile, budget and share.
    pub budget_thresholds: IntCounterVec,
    /// Tokens charged after responses, by model and kind (`prompt`, `completion`).
    pub tokens: IntCounterVec,
    /// Cost charged after responses, in USD, by model.
    pub cost_usd: prometheus::CounterVec,
    /// Requests to models without a price, by model.
    pub unpriced_requests: IntCounterVec,
    /// PII findings in requests, by entity type and action taken.
    pub pii_findings: IntCounterVec,
    /// NER lookups by outcome (`inferred`, `cache_hit`, `error`, `unavailable`).
    pub pii_ner: IntCounterVec,
    /// Audit entries appended to the spool.
    pub audit_records: IntCounter,
    /// Bytes held in the audit spool (not yet shipped).
    pub audit_spool_bytes: IntGauge,
    /// Age of the oldest sealed segment not yet shipped.
    pub audit_oldest_unshipped_seconds: Gauge,
    /// Failed segment or digest writes to the sink.
    pub audit_upload_errors: IntCounter,
    /// Requests refused because the audit spool was full or failing.
    pub audit_rejected: IntCounter,
    /// Failed fsyncs of the audit spool.
    pub audit_sync_errors: IntCounter,
    /// Policy reloads, by result (`success`, `failure`).
    pub policy_reloads: IntCounterVec,
    /// 1 when the last policy load succeeded, 0 when an edit was refused.
    pub policy_valid: IntGauge,
    /// Rules in the active policy set.
    pub policy_rules: IntGauge,
    /// Panics caught in request tasks (each answered 500 and recorded).
    pub panics: IntCounter,
    /// Connections closed because a request head did not arrive in time.
    pub header_timeouts: IntCounter,
    /// Limit settlements waiting for the store to come back.
    pub settlements_queued: IntGauge,
    /// Limit settlements dropped because the retry queue was full.
    pub settlements_dropped: IntCounter,
    /// Responses API responses whose owner could not be recorded in the state.
    pub response_owner_errors: IntCounter,
    /// Entries the in-process state dropped at its bound, by namespace.
    pub state_evictions: IntCounterVec,
    /// Time an inference waited for a free session of a model (`pii_ner`, `tool_embedding`).
    pub model_wait: HistogramVec,
    /// Time one inference of a model took.
    pub model_inference: HistogramVec,
}

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0,
];

impl Metrics {
    fn new() -> Metrics {
        let registry =
            Registry::new_custom(Some("warden".into()), None).unwrap_or_else(|_| Registry::new());
        let counter = |name: &str, help: &str, labels: &[&str]| {
            register(&registry, IntCounterVec::new(Opts::new(name, help), labels))
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            let opts = HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
            register(&registry, HistogramVec::new(opts, labels))
        };
        let gauge = |name: &str, help: &str| register(&registry, IntGauge::new(name, help));
        let total = |name: &str, help: &str| register(&registry, IntCounter::new(name, help));
        let in_flight = gauge("in_flight_requests", "Requests being handled");
        Metrics {
            requests: counter(
                "requests_total",
                "Requests answered",
                &["route", "model", "status"],
            ),
            request_duration: histogram(
                "request_duration_seconds",
                "Time from request start to the end of the response",
                &["route"],
            ),
            time_to_first_byte: histogram(
                "time_to_first_byte_seconds",
                "Time until the first response byte was written",
                &["route"],
            ),
            in_flight,
            upstream_requests: counter(
                "upstream_requests_total",
                "Upstream answers by provider and status",
                &["provider", "status"],
            ),
            upstream_errors: counter(
                "upstream_errors_total",
                "Failed upstream attempts by provider and error class",
                &["provider", "kind"],
            ),
            upstream_retries: counter(
                "upstream_retries_total",
                "Retried upstream attempts by provider",
                &["provider"],
            ),
            upstream_latency: histogram(
                "upstream_latency_seconds",
                "Time until the provider's response headers",
                &["provider"],
            ),
            stream_errors: counter(
                "stream_errors_total",
                "Streams ended with an error event",
                &["reason"],
            ),
            client_disconnects: counter(
                "client_disconnects_total",
                "Responses cut short by a client disconnect",
                &["route"],
            ),
            auth_results: counter(
                "auth_results_total",
                "Authentication outcomes by method or failure class",
                &["result"],
            ),
            trace_spans: counter(
                "trace_spans_total",
                "Trace spans sent to the OTLP collector, by result",
                &["result"],
            ),
            tls_reloads: counter(
                "tls_reloads_total",
                "TLS certificate reloads, by listener and result",
                &["listener", "result"],
            ),
            approvals_pending: gauge(
                "approvals_pending",
                "Tool-call approvals waiting for a decision, every tenant",
            ),
            jwks_refreshes: counter(
                "jwks_refreshes_total",
                "JWKS refreshes by issuer and result",
                &["issuer", "result"],
            ),
            introspection: counter(
                "introspection_total",
                "Token introspection outcomes",
                &["result"],
            ),
            audit_records: total("audit_records_total", "Audit entries appended"),
            audit_spool_bytes: gauge("audit_spool_bytes", "Bytes in the audit spool"),
            audit_oldest_unshipped_seconds: register(
                &registry,
                Gauge::new(
                    "audit_oldest_unshipped_seconds",
                    "Age of the oldest unshipped segment",
                ),
            ),
            audit_upload_errors: total("audit_upload_errors_total", "Failed audit sink writes"),
            audit_rejected: total(
                "audit_rejected_total",
                "Requests refused for audit capacity",
            ),
            audit_sync_errors: total(
                "audit_sync_errors_total",
                "Failed fsyncs of the audit spool",
            ),
            rate_limit_decisions: counter(
                "rate_limit_decisions_total",
                "Rate-limit admissions by profile and outcome",
                &["profile", "outcome"],
            ),
            rate_limit_store_errors: total(
                "rate_limit_store_errors_total",
                "Rate-limit store failures",
            ),
            limit_refusals: counter(
                "limit_refusals_total",
                "Requests refused by limits, by profile and kind",
                &["profile", "kind"],
            ),
            budget_thresholds: counter(
                "budget_threshold_crossings_total",
                "Budget soft thresholds crossed",
                &["profile", "budget", "share"],
            ),
            tokens: counter(
                "tokens_total",
                "Tokens charged, by model and kind",
                &["model", "kind"],
            ),
            cost_usd: register(
                &registry,
                prometheus::CounterVec::new(
                    Opts::new("cost_usd_total", "Cost charged in USD by model"),
                    &["model"],
                ),
            ),
            pii_ner: counter("pii_ner_total", "NER lookups by outcome", &["outcome"]),
            pii_findings: counter(
                "pii_findings_total",
                "PII findings by entity type, action and stage (request, answer)",
                &["entity", "action", "stage"],
            ),
            unpriced_requests: counter(
                "unpriced_requests_total",
                "Requests to models without a price",
                &["model"],
            ),
            policy_decisions: counter(
                "policy_decisions_total",
                "Policy decisions by effect and rule",
                &["effect", "rule"],
            ),
            tool_calls: counter(
                "tool_calls_total",
                "Tool calls through Warden by tool and outcome",
                &["tool", "outcome"],
            ),
            tool_selections: counter(
                "tool_selections_total",
                "Semantic tool selections by outcome",
                &["outcome"],
            ),
            tool_selection_seconds: histogram(
                "tool_selection_seconds",
                "Time to embed the latest user message and rank the tools",
                &[],
            ),
            policy_reloads: counter(
                "policy_reloads_total",
                "Policy reloads by result",
                &["result"],
            ),
            policy_valid: gauge(
                "policy_valid",
                "1 when the last policy load succeeded, 0 when an edit was refused",
            ),
            policy_rules: gauge("policy_rules", "Rules in the active policy set"),
            panics: total(
                "panics_total",
                "Panics caught in request tasks (answered 500, recorded)",
            ),
            header_timeouts: total(
                "client_header_timeouts_total",
                "Connections closed because a request head did not arrive in time",
            ),
            settlements_queued: gauge(
                "limit_settlements_queued",
                "Limit settlements waiting for the store to come back",
            ),
            settlements_dropped: total(
                "limit_settlements_dropped_total",
                "Limit settlements dropped because the retry queue was full",
            ),
            response_owner_errors: total(
                "response_owner_errors_total",
                "Responses whose owner could not be recorded (continuing them answers 404)",
            ),
            state_evictions: counter(
                "state_evictions_total",
                "Entries the in-process state dropped at state.local_max_entries",
                &["namespace"],
            ),
            model_wait: histogram(
                "model_wait_seconds",
                "Time an inference waited for a free session of the model",
                &["model"],
            ),
            model_inference: histogram(
                "model_inference_seconds",
                "Time one inference of the model took",
                &["model"],
            ),
            registry,
        }
    }

    /// All metrics in the Prometheus text exposition format.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

/// Registers a freshly built metric; names and labels are static, so failure is a bug.
#[allow(
    clippy::expect_used,
    reason = "constant names and labels, registered once at start-up and in every test"
)]
fn register<M>(registry: &Registry, metric: prometheus::Result<M>) -> M
where
    M: prometheus::core::Collector + Clone + 'static,
{
    let metric = metric.expect("valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("unique metric");
    metric
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_registered_metrics() {
        metrics()
            .requests
            .with_label_values(&["chat_completions", "m", "200"])
            .inc();
        let text = String::from_utf8(metrics().render()).unwrap();
        assert!(
            text.contains(
                "warden_requests_total{model=\"m\",route=\"chat_completions\",status=\"200\"}"
            ),
            "{text}"
        );
        assert!(text.contains("# TYPE warden_in_flight_requests gauge"));
    }
}
