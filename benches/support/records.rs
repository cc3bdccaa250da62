//! A realistic audit record for the audit benchmarks (shared by `audit` and `audit_s3`).

use warden::audit::record::RequestRecord;

/// The `i`th record of a storefront chat: ~900 bytes once chained.
pub fn record(i: u64) -> RequestRecord {
    RequestRecord {
        time: "2026-11-26T12:00:00.000Z".into(),
        request_id: format!("9f1c2a7e-0000-4000-8000-{i:012}"),
        tenant: Some("acme-retail".into()),
        subject: Some(format!("{:064x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15))),
        auth_method: Some("jwt".into()),
        endpoint: "chat_completions".into(),
        model: Some("gpt-4o-mini".into()),
        provider: Some("openai".into()),
        upstream_model: Some("gpt-4o-mini-2024-07-18".into()),
        policy_digest: Some(
            "sha256:571696a5dee709930a76520a86b848be51fd21e306f0db8af256053d4846ce66".into(),
        ),
        rule: Some("storefront-assistant-chat".into()),
        decision: Some("allow".into()),
        status: 200,
        stream: i.is_multiple_of(2),
        attempts: 1,
        latency_ms: 400.0 + (i % 700) as f64,
        upstream_latency_ms: Some(380.0 + (i % 700) as f64),
        time_to_first_byte_ms: Some(150.0 + (i % 90) as f64),
        tools: vec!["search_catalog".into(), "check_inventory".into()],
        ..Default::default()
    }
}
