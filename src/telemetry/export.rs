//! Shipping finished spans: the OTLP/HTTP exporter, on Warden's own outbound HTTP client
//! (rustls, an optional CA bundle) run on an export thread of its own, and counted in
//! `warden_trace_spans_total{result}`. The SDK's batch processor calls the exporter from
//! its own thread, never from a request. Both threads run at the lowest scheduling
//! priority: on busy cores, requests come first, and spans wait (and past the queue's
//! bound, are dropped and counted).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use opentelemetry_http::{HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use super::metrics;
use crate::config::TracesConfig;

/// The most of a collector's answer read (it is only checked for success).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The export threads' nice value: the lowest priority.
const EXPORT_NICE: i32 = 19;

/// Lowers the calling thread's scheduling priority to [`EXPORT_NICE`]. Best effort: where
/// the system refuses, the thread keeps its priority.
fn lower_priority() {
    if let Err(e) =
        rustix::process::setpriority_process(Some(rustix::thread::gettid()), EXPORT_NICE)
    {
        tracing::debug!(error = %e, "telemetry: the export thread keeps its priority");
    }
}

thread_local! {
    /// Whether this thread's priority was lowered already.
    static LOWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The OTLP exporter for `config`, counting what it ships.
pub fn exporter(
    config: &TracesConfig,
) -> anyhow::Result<Counted<opentelemetry_otlp::SpanExporter>> {
    let timeout = Duration::from_millis(config.timeout_ms);
    let client = ExportClient::start(config, timeout)?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(config.endpoint.clone())
        .with_timeout(timeout)
        .with_headers(config.headers.clone().into_iter().collect())
        .build()
        .map_err(|e| anyhow::anyhow!("telemetry.traces: {e}"))?;
    Ok(Counted(exporter))
}

/// Posts an export on Warden's HTTP client, on the export thread's runtime: the batch
/// processor awaits it from a thread that has no runtime of its own.
#[derive(Debug)]
struct ExportClient {
    client: crate::http_client::HttpClient,
    runtime: tokio::runtime::Handle,
    timeout: Duration,
}

impl ExportClient {
    fn start(config: &TracesConfig, timeout: Duration) -> anyhow::Result<ExportClient> {
        let client = crate::http_client::build(timeout, config.ca_file.as_deref())?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        std::thread::Builder::new()
            .name("otlp-export".into())
            .spawn(move || {
                lower_priority();
                runtime.block_on(std::future::pending::<()>())
            })?;
        Ok(ExportClient {
            client,
            runtime: handle,
            timeout,
        })
    }
}

#[async_trait::async_trait]
impl HttpClient for ExportClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let timeout = self.timeout;
        let (parts, body) = request.into_parts();
        let request = Request::from_parts(parts, Full::new(body));
        let exchange = async move {
            let answer = tokio::time::timeout(timeout, async {
                let response = client.request(request).await?;
                let (parts, body) = response.into_parts();
                let body = Limited::new(body, MAX_ANSWER_BYTES).collect().await?;
                Ok::<_, HttpError>(Response::from_parts(parts, body.to_bytes()))
            })
            .await;
            answer.map_err(|_| HttpError::from("the collector did not answer in time"))?
        };
        self.runtime.spawn(exchange).await?
    }
}

/// An exporter whose batches are counted by outcome.
#[derive(Debug)]
pub struct Counted<E>(E);

impl<E: SpanExporter> SpanExporter for Counted<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        // The batch processor's thread, which encodes the batch, is the SDK's: lowered
        // on its first export.
        if !LOWERED.replace(true) {
            lower_priority();
        }
        let spans = batch.len() as u64;
        let result = self.0.export(batch).await;
        let outcome = if result.is_ok() { "exported" } else { "failed" };
        metrics()
            .trace_spans
            .with_label_values(&[outcome])
            .inc_by(spans);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.0.set_resource(resource);
    }
}
