//! OpenTelemetry export (`telemetry:`): where request traces go, how many are kept, and
//! what the exporter may use. Without the section nothing is traced or propagated.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Invalid, invalid};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Request traces over OTLP/HTTP (protobuf); absent: none.
    #[serde(default)]
    pub traces: Option<TracesConfig>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TracesConfig {
    /// The collector's OTLP/HTTP traces URL, e.g. `http://otel-collector:4318/v1/traces`.
    pub endpoint: String,
    /// Headers sent with every export (e.g. a vendor's API key, as `${VAR}`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Share of new traces recorded, 0.0 to 1.0 (the trace id decides, so every replica
    /// decides alike); a request whose client sent a `traceparent` follows its sampled flag.
    #[serde(default = "default_ratio")]
    pub sampling_ratio: f64,
    /// `service.name` of the exported spans.
    #[serde(default = "default_service_name")]
    pub service_name: String,
    /// How often queued spans are exported (sooner when `max_export_batch_spans` are
    /// ready).
    #[serde(default = "default_interval_ms")]
    pub export_interval_ms: u64,
    /// Limit on one export call.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Spans waiting for export; beyond it new spans are dropped (and counted), never
    /// waited for.
    #[serde(default = "default_queue")]
    pub max_queue_spans: usize,
    /// Most spans in one export; at most `max_queue_spans`. Fewer, larger exports cost
    /// less CPU per span (each export is a request to the collector).
    #[serde(default = "default_batch")]
    pub max_export_batch_spans: usize,
    /// Extra PEM CA bundle for an `https` endpoint, relative to the config file.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_ratio() -> f64 {
    1.0
}

fn default_service_name() -> String {
    "warden".into()
}

fn default_interval_ms() -> u64 {
    5_000
}

fn default_timeout_ms() -> u64 {
    10_000
}

fn default_queue() -> usize {
    8192
}

fn default_batch() -> usize {
    1024
}

impl TelemetryConfig {
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        let Some(t) = &self.traces else {
            return Ok(());
        };
        let at = |key: &'static str| ["telemetry", "traces", key];
        match t.endpoint.parse::<http::Uri>() {
            Ok(uri)
                if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() => {}
            _ => {
                return Err(invalid(
                    &at("endpoint"),
                    "must be an http:// or https:// URL (the collector's /v1/traces)",
                ));
            }
        }
        if !(0.0..=1.0).contains(&t.sampling_ratio) {
            return Err(invalid(
                &at("sampling_ratio"),
                "must be between 0.0 and 1.0",
            ));
        }
        for (name, value) in &t.headers {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err()
                || http::HeaderValue::from_str(value).is_err()
            {
                // The value may be a credential: only the name is shown.
                return Err(invalid(
                    &at("headers"),
                    format!(
                        "`{name}` is not a valid header name, or its value is not a valid header value"
                    ),
                ));
            }
        }
        if t.timeout_ms == 0
            || t.export_interval_ms == 0
            || t.max_queue_spans == 0
            || t.service_name.is_empty()
        {
            return Err(invalid(
                &["telemetry", "traces"],
                "timeout_ms, export_interval_ms and max_queue_spans must be greater than 0, service_name not empty",
            ));
        }
        if !(1..=t.max_queue_spans).contains(&t.max_export_batch_spans) {
            return Err(invalid(
                &at("max_export_batch_spans"),
                "must be between 1 and max_queue_spans",
            ));
        }
        Ok(())
    }

    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        if let Some(ca) = self.traces.as_mut().and_then(|t| t.ca_file.as_mut()) {
            *ca = base.join(&*ca);
        }
    }
}
