//! PII redaction end to end, with the mock provider recording what it received: planted
//! values never reach the provider; the client gets them back (whole answers, streams
//! with placeholders split across chunks, tool-call arguments); tool results are
//! redacted; `block` answers 400 naming types only; and no log line, metric, error body
//! or audit record holds a planted value.

mod common;

use common::*;
use serde_json::{Value, json};

const EMAIL: &str = "jane.doe@example.com";
const PHONE: &str = "+44 20 7946 0958";
const IBAN: &str = "DE89 3704 0044 0532 0130 00";
const CARD: &str = "4111 1111 1111 1111";
const PLANTED: [&str; 4] = [EMAIL, PHONE, IBAN, CARD];

fn config(mock: &MockProvider, dir: &std::path::Path) -> String {
    format!(
        "providers:\n  up:\n    kind: openai\n    base_url: {url}\n    api_key: sk-test\n\
         models:\n  gpt-4o-mini:\n    targets:\n      - provider: up\n\
         audit:\n  spool_dir: {dir}/spool\n  sink:\n    kind: file\n    dir: {dir}/archive\n  segment_max_age_seconds: 1\n\
         pii:\n  default_profile: shop\n  profiles:\n    shop:\n      actions: {{EMAIL: pseudonymize, PHONE: pseudonymize, IBAN: redact, CREDIT_CARD: block}}\n      allow: [help@acme.example]\n",
        url = mock.base_url(),
        dir = dir.display()
    )
}

fn assert_clean(what: &str, text: &str) {
    for v in PLANTED {
        assert!(
            !text.contains(v),
            "{what} contains a planted value {v:?}: {text}"
        );
    }
}

/// What the provider received, with placeholder nonces left out.
async fn provider_saw(mock: &MockProvider) -> String {
    without_nonces(&mock.last_request().await["body"].to_string())
}

/// Sends `message` as one user turn through `w` to the echoing `mock`, checks that the
/// customer gets it back exactly (every placeholder restored), and returns what the
/// provider saw.
async fn chat_restored(w: &Warden, mock: &MockProvider, message: &str) -> String {
    let r = post_json(
        &w.url("/v1/chat/completions"),
        &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": message}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        format!("You said: {message}"),
        "the customer sees the real values"
    );
    provider_saw(mock).await
}

#[tokio::test]
async fn whole_answers_are_restored_and_the_provider_sees_placeholders() {
    let mock = MockProvider::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let w = Warden::start(&config(&mock, dir.path()));
    let prompt = format!("Reach me at {EMAIL} or {PHONE}, or help@acme.example");
    let seen = chat_restored(&w, &mock, &prompt).await;
    assert_clean("the provider's request", &seen);
    assert!(
        seen.contains("<EMAIL_1>") && seen.contains("<PHONE_1>"),
        "{seen}"
    );
    assert!(
        seen.contains("help@acme.example"),
        "allow-listed values pass"
    );

    // Tool results and earlier tool-call arguments are redacted too; IBANs are redacted.
    let body = json!({"model": "gpt-4o-mini", "messages": [
        {"role": "user", "content": "look up my account"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
            "function": {"name": "lookup", "arguments": json!({"email": EMAIL}).to_string()}}]},
        {"role": "tool", "tool_call_id": "c1", "content": json!({"iban": IBAN, "phone": PHONE}).to_string()}
    ]});
    let r = post_json(&w.url("/v1/chat/completions"), &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = provider_saw(&mock).await;
    assert_clean("the provider's request with tool messages", &seen);
    assert!(seen.contains("[IBAN]"), "{seen}");
    let args: Value = serde_json::from_str(&without_nonces(
        mock.last_request().await["body"]["messages"][1]["tool_calls"][0]["function"]["arguments"]
            .as_str()
            .unwrap(),
    ))
    .unwrap();
    assert_eq!(
        args,
        json!({"email": "<EMAIL_1>"}),
        "arguments stay valid JSON"
    );

    // A blocked type refuses the request, naming the type but not the value.
    let r = post_json(
        &w.url("/v1/chat/completions"),
        &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": format!("card {CARD}")}]}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "pii_blocked");
    assert!(r.text().contains("CREDIT_CARD"));
    assert_clean("the error body", &r.text());

    let metrics = get(&w.admin_url("/metrics")).await.text();
    assert!(
        metrics.contains(
            "warden_pii_findings_total{action=\"pseudonymize\",entity=\"EMAIL\",stage=\"request\"}"
        ),
        "{metrics}"
    );
    assert_clean("the metrics", &metrics);
    stop_and_check(w, dir.path()).await;
}

/// Names the name lists know reach the provider as placeholders through the proxy on a
/// profile without the NER model: a given name and a surname in a French sentence, one
/// before a phone number in a tool result (where an attacker's tool would put it), a
/// given name joined to a found name; the customer sees them restored, and no log or
/// audit file holds them.
#[tokio::test]
async fn names_the_lists_know_never_reach_the_provider_without_the_model() {
    let mock = MockProvider::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let w = acting_on(&mock, dir.path(), "PERSON: pseudonymize");
    let message = "Jean Dupont a commandé deux casseroles, ask Ingrid Olsen or Per";
    let seen = chat_restored(&w, &mock, message).await;
    for value in ["Jean", "Dupont", "Ingrid", "Olsen", " Per"] {
        assert!(!seen.contains(value), "the provider saw {value}: {seen}");
    }
    assert!(seen.contains("<PERSON_3>"), "three names: {seen}");

    let body = json!({"model": "gpt-4o-mini", "messages": [
        {"role": "user", "content": "who is the contact?"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
            "function": {"name": "crm", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1",
            "content": json!({"contact": "Lars Eriksson +46 8 123 456 78"}).to_string()}
    ]});
    let r = post_json(&w.url("/v1/chat/completions"), &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = provider_saw(&mock).await;
    assert!(!seen.contains("Eriksson"), "{seen}");

    stopped_without(w, dir.path(), &["Dupont", "Olsen", "Eriksson"]).await;
}

/// A customer export a tool returns as CSV: the cells under "customer_name",
/// "date_of_birth" and "phone" carry no cue of their own and reach the provider as
/// placeholders; the order numbers and the product stay as they are.
#[tokio::test]
async fn cells_of_an_exported_table_never_reach_the_provider() {
    let mock = MockProvider::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let w = acting_on(
        &mock,
        dir.path(),
        "PERSON: pseudonymize, DATE_OF_BIRTH: pseudonymize, PHONE: pseudonymize",
    );
    let export = "order_id;customer_name;date_of_birth;phone;product\n\
                  88213;Wiktoria Zielińska;1987-06-14;601234567;Alpine 40L Backpack\n\
                  88214;Tomasz Wrzos;03.11.1979;512 998 104;TrailRunner GTX";
    let body = json!({"model": "gpt-4o-mini", "messages": [
        {"role": "user", "content": "who ordered what?"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
            "function": {"name": "orders_export", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": export}
    ]});
    let r = post_json(&w.url("/v1/chat/completions"), &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = provider_saw(&mock).await;
    let values = [
        "Zielińska",
        "Wrzos",
        "1987-06-14",
        "03.11.1979",
        "601234567",
        "512 998 104",
    ];
    for value in values {
        assert!(!seen.contains(value), "the provider saw {value}: {seen}");
    }
    for kept in ["88213", "88214", "Alpine 40L Backpack", "TrailRunner GTX"] {
        assert!(seen.contains(kept), "{kept} was changed: {seen}");
    }

    stopped_without(w, dir.path(), &values).await;
}

/// A tool's records as JSON and `key=value` lines: values whose key names a person or a
/// phone reach the provider as placeholders, even a name no list holds; a product under
/// a bare `name` key and the keys themselves are left as they are.
#[tokio::test]
async fn values_named_by_their_keys_never_reach_the_provider() {
    let mock = MockProvider::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let w = acting_on(
        &mock,
        dir.path(),
        "PERSON: pseudonymize, PHONE: pseudonymize",
    );
    let records = "{\"customerName\": \"Qorvin Tallbeck\", \"msisdn\": \"0151 2345 6789\", \
                   \"items\": [{\"name\": \"Madison Tote\", \"qty\": 1}]}\n\
                   customer_id=88123 contact_name=\"Brevik Ostrand\" status=active";
    let body = json!({"model": "gpt-4o-mini", "messages": [
        {"role": "user", "content": "who ordered what?"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
            "function": {"name": "orders_lookup", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": records}
    ]});
    let r = post_json(&w.url("/v1/chat/completions"), &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = provider_saw(&mock).await;
    let values = ["Qorvin Tallbeck", "0151 2345 6789", "Brevik Ostrand"];
    for value in values {
        assert!(!seen.contains(value), "the provider saw {value}: {seen}");
    }
    for kept in [
        "customerName",
        "msisdn",
        "Madison Tote",
        "contact_name",
        "88123",
    ] {
        assert!(seen.contains(kept), "{kept} was changed: {seen}");
    }

    stopped_without(w, dir.path(), &values).await;
}

/// Values that only a cue makes personal (a password after "password is", a PIN, a birth
/// year after "born in") reach the provider as placeholders, in the user's turn and in a
/// tool result, and come back to the customer; under `block` a password refuses the
/// request without its value. Nothing of them reaches the log or the audit files.
#[tokio::test]
async fn passwords_pins_and_birth_years_after_cues_never_reach_the_provider() {
    const PASSWORD: &str = "Tr0ub4dor&3";
    const PIN: &str = "4921";
    const YEAR: &str = "1974";
    let mock = MockProvider::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let w = acting_on(
        &mock,
        dir.path(),
        "SECRET: pseudonymize, DATE_OF_BIRTH: pseudonymize",
    );
    let message = format!(
        "my password is {PASSWORD} and the gift card pin {PIN} fails; I was born in {YEAR}"
    );
    let seen = chat_restored(&w, &mock, &message).await;
    for value in [PASSWORD, PIN, YEAR] {
        assert!(!seen.contains(value), "the provider saw {value}: {seen}");
    }
    assert!(
        seen.contains("<SECRET_1>")
            && seen.contains("<SECRET_2>")
            && seen.contains("<DATE_OF_BIRTH_1>"),
        "{seen}"
    );

    // The same values in a tool result, where an attacker's tool would return them.
    let body = json!({"model": "gpt-4o-mini", "messages": [
        {"role": "user", "content": "what is on my account?"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
            "function": {"name": "account", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1",
            "content": json!({"note": format!("Passwort: {PASSWORD}")}).to_string()}
    ]});
    let r = post_json(&w.url("/v1/chat/completions"), &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = provider_saw(&mock).await;
    assert!(!seen.contains(PASSWORD), "{seen}");

    stopped_without(w, dir.path(), &[PASSWORD, PIN]).await;

    // Under `block`, a password after its cue refuses the request without its value.
    let dir = tempfile::tempdir().unwrap();
    let w = Warden::start(
        &config(&mock, dir.path())
            .replace("CREDIT_CARD: block}", "CREDIT_CARD: block, SECRET: block}"),
    );
    let r = post_json(
        &w.url("/v1/chat/completions"),
        &json!({"model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": format!("pwd: {PASSWORD}")}]}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "pii_blocked");
    assert!(r.text().contains("SECRET"), "{}", r.text());
    assert!(!r.text().contains(PASSWORD), "{}", r.text());
}

/// Warden on the test configuration with `actions` added to its default profile's
/// ("PERSON: pseudonymize").
fn acting_on(mock: &MockProvider, dir: &std::path::Path, actions: &str) -> Warden {
    Warden::start(&config(mock, dir).replace(
        "CREDIT_CARD: block}",
        &format!("CREDIT_CARD: block, {actions}}}"),
    ))
}

/// Stops Warden (flushing the audit log) and checks that its log and audit files hold
/// none of `values`, and that the audit files count findings.
async fn stopped_without(mut w: Warden, dir: &std::path::Path, values: &[&str]) {
    let log_path = w.log.clone();
    w.terminate();
    assert_eq!(w.wait_exit(std::time::Duration::from_secs(15)), Some(0));
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let audit = all_text(dir);
    assert!(
        audit.contains("\"pii\":[{"),
        "findings are recorded as counts"
    );
    for value in values {
        assert!(!log.contains(value), "the log holds {value}");
        assert!(!audit.contains(value), "the audit files hold {value}");
    }
}

/// Stops Warden (flushing the audit log) and checks its log and audit files.
async fn stop_and_check(mut w: Warden, dir: &std::path::Path) {
    let log_path = w.log.clone();
    w.terminate();
    assert_eq!(w.wait_exit(std::time::Duration::from_secs(15)), Some(0));
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(log.contains("warden::access"), "the log was written");
    assert_clean("the log", &log);
    let audit = all_text(dir);
    assert!(
        audit.contains("\"pii\":[{"),
        "findings are recorded as counts"
    );
    assert_clean("the audit files", &audit);
}

#[tokio::test]
async fn streams_restore_placeholders_split_across_chunks() {
    // Three characters per chunk: every placeholder arrives in pieces.
    let mock = MockProvider::start(&["--chunk-chars", "3"]);
    let dir = tempfile::tempdir().unwrap();
    let w = Warden::start(&config(&mock, dir.path()));
    let prompt = format!("Write to {EMAIL} today");
    let (status, chunks) = post_stream(
        &w.url("/v1/chat/completions"),
        &json!({"model": "gpt-4o-mini", "stream": true,
                "messages": [{"role": "user", "content": prompt}]}),
    )
    .await;
    assert_eq!(status, 200);
    let events = stream_events(&chunks);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    assert_eq!(
        stream_text(&events[..events.len() - 1]),
        format!("You said: {prompt}")
    );
    assert_clean("the provider's request", &provider_saw(&mock).await);

    // A streamed tool call whose arguments carry a placeholder split in three pieces.
    let (status, chunks) = post_stream(
        &w.url("/v1/chat/completions"),
        &json!({"model": "gpt-4o-mini", "stream": true, "tool_choice": "required",
                "tools": [{"type": "function", "function": {"name": "notify",
                    "parameters": {"type": "object", "properties": {"to": {"type": "string"}}, "required": ["to"]}}}],
                "messages": [{"role": "user", "content": EMAIL}]}),
    )
    .await;
    assert_eq!(status, 200);
    let mut args = String::new();
    for data in stream_events(&chunks) {
        if let Ok(v) = serde_json::from_str::<Value>(&data)
            && let Some(a) = v
                .pointer("/choices/0/delta/tool_calls/0/function/arguments")
                .and_then(Value::as_str)
        {
            args.push_str(a);
        }
    }
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"to": EMAIL})
    );
    stop_and_check(w, dir.path()).await;
}

/// `scan_output`: personal data the model writes itself (here: a sentence it "quotes"
/// from a retrieved document) is withheld as the profile says, in whole answers and in
/// streams cut into 3-character chunks, while the customer's own value still comes back;
/// the findings are counted as the answer's, never logged.
#[tokio::test]
async fn output_scanning_withholds_personal_data_the_model_emits() {
    const QUOTED: &str = "Your account manager is bob.smith@corp.example, +1 415 555 2671.";
    let mock = MockProvider::start(&["--chunk-chars", "3", "--also-say", QUOTED]);
    let dir = tempfile::tempdir().unwrap();
    let config = config(&mock, dir.path()).replace(
        "      allow: [help@acme.example]\n",
        "      allow: [help@acme.example]\n      scan_output: true\n      output_holdback_bytes: 32\n",
    );
    let mut w = Warden::start(&config);
    let prompt = format!("Write to {EMAIL} today");
    let expected = format!("You said: {prompt} Your account manager is [EMAIL], [PHONE].");
    let chat = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]});
    let r = post_json(&w.url("/v1/chat/completions"), &chat).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["choices"][0]["message"]["content"], expected);

    let mut streamed = chat.clone();
    streamed["stream"] = json!(true);
    let (status, chunks) = post_stream(&w.url("/v1/chat/completions"), &streamed).await;
    assert_eq!(status, 200);
    let events = stream_events(&chunks);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    assert_eq!(stream_text(&events[..events.len() - 1]), expected);
    let first_text = events
        .iter()
        .position(|e| e.contains("\"content\":\"") && !e.contains("\"content\":\"\""))
        .unwrap();
    assert!(
        first_text < events.len() / 2,
        "text flows before the end of the stream (first at event {first_text} of {})",
        events.len()
    );

    let metrics = get(&w.admin_url("/metrics")).await.text();
    for entity in ["EMAIL", "PHONE"] {
        let line = format!(
            "warden_pii_findings_total{{action=\"redact\",entity=\"{entity}\",stage=\"answer\"}} 2"
        );
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
    w.terminate();
    assert_eq!(w.wait_exit(std::time::Duration::from_secs(15)), Some(0));
    let records = all_text(dir.path());
    assert!(
        records.contains(r#"{"action":"redact","count":1,"entity":"PHONE","stage":"answer"}"#),
        "{records}"
    );
    for text in [records, w.logs(), metrics] {
        assert!(!text.contains("bob.smith") && !text.contains("555 2671"));
        assert_clean("records, logs and metrics", &text);
    }
}

/// `scan_output: ner`: a name and an address the model writes (a name no cue and no name
/// list finds) are withheld in whole answers and in streams cut into 3-character chunks, which are
/// released a sentence at a time; with `patterns` the name goes through.
#[tokio::test]
async fn output_scanning_with_the_model_withholds_names_and_addresses() {
    const QUOTED: &str = "Your parcel was packed by Margaret Thistlewaite at 12 Baker Street, London NW1 6XE. It ships today.";
    let mock = MockProvider::start(&["--chunk-chars", "3", "--also-say", QUOTED]);
    let root = env!("CARGO_MANIFEST_DIR");
    let model_dir = format!("{root}/ner-models/rampart");
    let chat = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Where is my parcel?"}]});
    let mut streamed = chat.clone();
    streamed["stream"] = json!(true);

    let w = Warden::start(&ner_config_with(
        &mock,
        &model_dir,
        "required",
        "      scan_output: ner\n",
    ));
    let r = post_json(&w.url("/v1/chat/completions"), &chat).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let whole = r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    for value in ["Margaret", "Thistlewaite", "Baker Street", "NW1 6XE"] {
        assert!(!whole.contains(value), "{value} in {whole}");
    }
    assert!(
        whole.contains("[PERSON]") && whole.contains("[ADDRESS]"),
        "{whole}"
    );
    assert!(whole.ends_with("It ships today."), "{whole}");
    let (status, chunks) = post_stream(&w.url("/v1/chat/completions"), &streamed).await;
    assert_eq!(status, 200);
    let events = stream_events(&chunks);
    assert_eq!(
        stream_text(&events[..events.len() - 1]),
        whole,
        "a stream says what the answer says"
    );

    let patterns = Warden::start(&ner_config_with(
        &mock,
        &model_dir,
        "required",
        "      scan_output: patterns\n",
    ));
    let r = post_json(&patterns.url("/v1/chat/completions"), &chat).await;
    let content = r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        content.contains("Margaret Thistlewaite"),
        "patterns find no name the lists do not know: {content}"
    );
}

/// The labelled evaluation set (tests/fixtures/pii/eval.jsonl) through the pattern
/// recognizers: recall on every type they cover and commerce terms left untouched.
#[test]
fn evaluation_set_meets_recall_and_keeps_commerce_terms() {
    use warden::pii::eval::{Example, evaluate};
    let examples: Vec<Example> = include_str!("fixtures/pii/eval.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(examples.len() > 400);
    let settings: warden::config::PiiProfile = serde_yaml_ng::from_str("{}").unwrap();
    let profile = warden::pii::Profile::new("built-in", &settings).unwrap();
    let report = evaluate(&profile, &examples);
    let table = warden::pii::eval::render(&report);
    for (kind, c) in &report.by_type {
        if c.tp + c.fn_ > 0 {
            assert!(
                c.recall() >= 0.97,
                "{kind} recall {:.3}\n{table}",
                c.recall()
            );
        }
    }
    assert!(report.total.precision() >= 0.95, "{table}");
    assert!(report.kept_share() >= 0.99, "{table}");
}

/// The same set through patterns and the NER model Warden loads by default (the int8
/// model `scripts/fetch-models.sh` derives): the targets hold with names found by the model.
#[test]
fn evaluation_set_meets_the_targets_with_the_ner_model() {
    use warden::pii::eval::{Example, evaluate};
    let examples: Vec<Example> = include_str!("fixtures/pii/eval.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let root = env!("CARGO_MANIFEST_DIR");
    let config: warden::config::PiiConfig = serde_yaml_ng::from_str(&format!(
        "ner:\n  model_dir: {root}/ner-models/rampart\n  runtime: {root}/ner-models/libonnxruntime.so.1.32.0\n\
         profiles:\n  eval:\n    ner: required\n"
    ))
    .unwrap();
    let profiles = warden::pii::Profiles::from_config(Some(&config)).unwrap();
    let profile = profiles.get("eval").unwrap();
    assert!(!profile.ner_missing(), "the NER model loads");
    let report = evaluate(&profile, &examples);
    let table = warden::pii::eval::render(&report);
    let person = &report.by_type["PERSON"];
    assert!(
        person.tp >= 55,
        "the model finds the planted names\n{table}"
    );
    assert!(report.total.recall() >= 0.97, "{table}");
    assert!(report.total.precision() >= 0.95, "{table}");
    assert!(report.kept_share() >= 0.99, "{table}");
}

/// The shipped configuration's default profile (patterns, cues, the NER model and the
/// shop's keep lists) over a labelled file of tests/fixtures/pii, with its report.
fn shipped_profile_on(file: &str) -> (warden::pii::eval::Report, String) {
    let root = env!("CARGO_MANIFEST_DIR");
    let config = std::path::PathBuf::from(root).join("warden.yaml");
    let (profile, _) = warden::pii::cli::load_profile(Some(&config), None).unwrap();
    assert!(profile.ner().is_some(), "the NER model loads");
    let examples = warden::pii::eval::read(
        &std::path::PathBuf::from(root)
            .join("tests/fixtures/pii")
            .join(file),
    )
    .unwrap();
    let report = warden::pii::eval::evaluate(&profile, &examples);
    let table = warden::pii::eval::render(&report);
    (report, table)
}

/// The held-out set: messages written by hand in other styles, locales and shapes than
/// the tuning set's generator, in three batches (handwritten.txt, handwritten-2.txt,
/// handwritten-3.txt), each split with its own fixed seed and never tuned on. Targets:
/// recall 0.99 overall and 0.97 per type, precision 0.97, commerce terms kept 0.995. The
/// detector reaches precision 0.977, and recall 0.969 overall and 0.929 for each type
/// with ten values or more (types with fewer count in the total only), *covered* 0.944
/// (the values no part of which a provider can read) and commerce terms kept 0.990:
/// recall and the terms kept are below the targets, held here so that a change that
/// loses any of it fails.
#[test]
fn held_out_set_meets_the_targets_on_the_default_profile() {
    let (report, table) = shipped_profile_keeps(
        "heldout.jsonl",
        Floors {
            examples: 450,
            recall: 0.965,
            covered: 0.935,
            precision: 0.97,
            kept: 0.985,
        },
    );
    for (kind, c) in &report.by_type {
        if c.tp + c.fn_ >= 10 {
            assert!(
                c.recall() >= 0.925,
                "{kind} recall {:.3}\n{table}",
                c.recall()
            );
        }
    }
}

/// The multi-locale tuning set (Faker, eight locales) holds what tuning reached (recall
/// 0.998, covered 0.995, precision 1.000), so a change that loses it is seen.
#[test]
fn tuning_set_keeps_its_figures_on_the_default_profile() {
    shipped_profile_keeps(
        "tune.jsonl",
        Floors {
            examples: 1000,
            recall: 0.99,
            covered: 0.99,
            precision: 0.995,
            kept: 0.995,
        },
    );
}

/// The hand-written tuning messages hold what tuning reached on them (recall 0.984,
/// covered 0.981, precision 0.998): pieces of addresses and names, phones and birth dates
/// as people write them in eight languages, tool records as JSON and `key=value` lines,
/// mail headers, numbers that are not phones, brands named after people, and people named
/// like the shop's brands (which the keep-list loses to the brand). What is left are names
/// neither a cue, the name lists nor the model finds: one word without a cue ("zara from
/// accounts here", "kal Anjali ko call kiya"), names the lists do not hold ("Abu Bakar
/// Hassan, please call back"), a surname written first ("Li Wei / +86 …").
#[test]
fn hand_written_tuning_set_keeps_its_figures_on_the_default_profile() {
    shipped_profile_keeps(
        "handwritten-dev.jsonl",
        Floors {
            examples: 1100,
            recall: 0.98,
            covered: 0.975,
            precision: 0.99,
            kept: 0.995,
        },
    );
}

/// The least a labelled set must keep on the shipped profile: its size, and its overall
/// recall, covered share, precision and share of commerce terms kept.
struct Floors {
    examples: usize,
    recall: f64,
    covered: f64,
    precision: f64,
    kept: f64,
}

/// [`shipped_profile_on`], with the report held to `floors`.
fn shipped_profile_keeps(file: &str, floors: Floors) -> (warden::pii::eval::Report, String) {
    let (report, table) = shipped_profile_on(file);
    assert!(report.examples >= floors.examples, "{table}");
    assert!(report.total.recall() >= floors.recall, "{table}");
    assert!(report.total.covered_share() >= floors.covered, "{table}");
    assert!(report.total.precision() >= floors.precision, "{table}");
    assert!(report.kept_share() >= floors.kept, "{table}");
    (report, table)
}

fn ner_config(mock: &MockProvider, model_dir: &str) -> String {
    ner_config_with(mock, model_dir, "required", "")
}

fn ner_config_with(mock: &MockProvider, model_dir: &str, mode: &str, extra: &str) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    format!(
        "providers:\n  up:\n    kind: openai\n    base_url: {url}\n    api_key: sk-test\n\
         models:\n  gpt-4o-mini:\n    targets:\n      - provider: up\n\
         pii:\n  default_profile: names\n  ner:\n    model_dir: {model_dir}\n    runtime: {root}/ner-models/libonnxruntime.so.1.32.0\n\
         \x20 profiles:\n    names:\n      ner: {mode}\n{extra}",
        url = mock.base_url(),
    )
}

/// Through the proxy, no piece of a name or an address is left for the provider to read:
/// the model's partial spans grow over titles, units, postcodes and localities, and a
/// name the model took for a street stays a name next to its address. The answer comes
/// back restored exactly.
#[tokio::test]
async fn whole_names_and_addresses_reach_the_provider_as_placeholders() {
    let mock = MockProvider::start(&[]);
    let model_dir = format!("{}/ner-models/rampart", env!("CARGO_MANIFEST_DIR"));
    let w = Warden::start(&ner_config(&mock, &model_dir));
    let message = "ship to Gordon Hill, Flat 4, Elliott Inlet, North Ronald, DD46 0UZ please. \
                   Attn: Mrs Rachel Goldberg B.A., 19 Park Crescent, Edinburgh EH3 6AZ";
    let seen = chat_restored(&w, &mock, message).await;
    for piece in [
        "Gordon",
        "Hill",
        "Flat 4",
        "Elliott",
        "Ronald",
        "DD46",
        "0UZ",
        "Mrs",
        "Rachel",
        "Goldberg",
        "B.A.",
        "19 Park",
        "Edinburgh",
        "EH3",
        "6AZ",
    ] {
        assert!(
            !seen.contains(piece),
            "`{piece}` reached the provider: {seen}"
        );
    }
    assert!(seen.contains("please") && seen.contains("Attn:"), "{seen}");
    assert!(!w.logs().contains("Goldberg"));
}

/// The NER model (fetched by scripts/fetch-models.sh) finds the person's name: the
/// provider sees a placeholder, the customer the name; the second turn of a conversation
/// reuses the cached result for the first; a profile that requires the model refuses
/// requests when it cannot be loaded.
#[tokio::test]
async fn names_are_found_by_the_ner_model_and_cached_across_turns() {
    let mock = MockProvider::start(&[]);
    let model_dir = format!("{}/ner-models/rampart", env!("CARGO_MANIFEST_DIR"));
    let w = Warden::start(&ner_config(&mock, &model_dir));
    let first = "Hi, I'm Jane Doe and my parcel has not arrived.";
    let seen = chat_restored(&w, &mock, first).await;
    assert!(
        !seen.contains("Jane Doe") && seen.contains("<PERSON_1>"),
        "{seen}"
    );

    let r = post_json(
        &w.url("/v1/chat/completions"),
        &json!({"model": "gpt-4o-mini", "messages": [
            {"role": "user", "content": first},
            {"role": "assistant", "content": "Sorry to hear that."},
            {"role": "user", "content": "It was the Alpine 40L backpack."}]}),
    )
    .await;
    assert_eq!(r.status, 200);
    let metrics = get(&w.admin_url("/metrics")).await.text();
    assert!(
        metrics.lines().any(
            |l| l.starts_with("warden_pii_ner_total{outcome=\"cache_hit\"}") && !l.ends_with(" 0")
        ),
        "the first turn is not inferred again: {metrics}"
    );
    // Each inference is timed, with its wait for a free session.
    for series in [
        "warden_model_inference_seconds_count{model=\"pii_ner\"}",
        "warden_model_wait_seconds_count{model=\"pii_ner\"}",
    ] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with(series) && !l.ends_with(" 0")),
            "{series} in {metrics}"
        );
    }
    assert!(!w.logs().contains("Jane Doe"));

    let broken = Warden::start(&ner_config(&mock, "/nonexistent/model"));
    let r = post_json(
        &broken.url("/v1/chat/completions"),
        &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": first}]}),
    )
    .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "pii_unavailable");
}

/// A profile's commerce terms (`keep_terms_files`, the shipped demo list) keep product
/// names the NER model takes for a person or a place; the customer's name in the same
/// message is still pseudonymized. Without the list the model's mistake reaches the
/// provider as a placeholder, so the test sees what the list changes.
#[tokio::test]
async fn product_names_on_the_keep_list_reach_the_provider_whole() {
    let mock = MockProvider::start(&[]);
    let root = env!("CARGO_MANIFEST_DIR");
    let model_dir = format!("{root}/ner-models/rampart");
    let message = "Do you have the Lumen Airmesh Tee and the Ardent Stride Runner 5 \
                   in stock? Please hold them for Maria Gonzalez.";
    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": message}]});

    let plain = Warden::start(&ner_config(&mock, &model_dir));
    let r = post_json(&plain.url("/v1/chat/completions"), &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = provider_saw(&mock).await;
    assert!(!seen.contains("Ardent Stride Runner 5"), "{seen}");

    let keep = format!("      keep_terms_files: [{root}/examples/commerce/keep-terms.txt]\n");
    let w = Warden::start(&ner_config_with(&mock, &model_dir, "required", &keep));
    let seen = chat_restored(&w, &mock, message).await;
    for product in ["Lumen Airmesh Tee", "Ardent Stride Runner 5"] {
        assert!(seen.contains(product), "{product}: {seen}");
    }
    assert!(
        !seen.contains("Maria Gonzalez") && seen.contains("<PERSON_1>"),
        "{seen}"
    );

    // A list that cannot be read stops the start.
    let missing = ner_config_with(
        &mock,
        &model_dir,
        "required",
        "      keep_terms_files: [/nonexistent/terms.txt]\n",
    );
    let err = Warden::refused(&missing);
    assert!(err.contains("/nonexistent/terms.txt"), "{err}");
}

/// `keep_terms_from_tools: [search_catalog]`: a product the detector takes for personal
/// data is redacted until a catalog search through Warden returns it; from then on it
/// reaches the provider whole, and the customer's name still does not.
#[tokio::test]
async fn catalog_search_results_teach_the_profile_its_product_names() {
    let provider = MockProvider::start(&[]);
    let shop = MockCommerce::start();
    let dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let policies = policies_with_registry(
        dir.path(),
        "apiVersion: warden/v1\nkind: Policy\nrules:\n  - name: all\n    effect: allow\n    match:\n      \
         endpoints: [chat_completions, tools_invoke]\n    settings:\n      tools:\n        allow: [search_catalog]\n",
    );
    let url = shop.base_url();
    let config = format!(
        "providers:\n  up:\n    kind: openai\n    base_url: {}\n    api_key: sk-test\n\
         models:\n  gpt-4o-mini:\n    targets:\n      - provider: up\n\
         policy:\n  dir: {}\n  watch: false\n\
         tools:\n  backends:\n    catalog: {{base_url: \"{url}\"}}\n    inventory: {{base_url: \"{url}\"}}\n    \
         pricing: {{base_url: \"{url}\"}}\n    orders: {{base_url: \"{url}\"}}\n    services: {{base_url: \"{url}\"}}\n\
         pii:\n  default_profile: shop\n  ner:\n    model_dir: {root}/ner-models/rampart\n    runtime: {root}/ner-models/libonnxruntime.so.1.32.0\n  \
         profiles:\n    shop:\n      ner: required\n      keep_terms_from_tools: [search_catalog]\n",
        provider.base_url(),
        policies.display(),
    );
    let w = Warden::start(&config);
    let product = "Brisa Harbor Glide 7";
    let message = format!("Is the {product} waterproof? Please hold one for Maria Gonzalez.");
    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": message}]});

    let r = post_json(&w.url("/v1/chat/completions"), &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = provider_saw(&provider).await;
    assert!(
        !seen.contains(product),
        "redacted before the search: {seen}"
    );

    let search = post_json(
        &w.url("/v1/tools/search_catalog/invoke"),
        &json!({"arguments": {"query": "Brisa Harbor Glide"}}),
    )
    .await;
    assert_eq!(search.status, 200, "{}", search.text());
    assert!(search.text().contains(product), "{}", search.text());

    let seen = chat_restored(&w, &provider, &message).await;
    assert!(seen.contains(product), "kept after the search: {seen}");
    assert!(!seen.contains("Maria Gonzalez"), "{seen}");

    // A tool that is not in the registry stops the start.
    let bad = config.replace(
        "keep_terms_from_tools: [search_catalog]",
        "keep_terms_from_tools: [search_catalogue]",
    );
    let err = Warden::refused(&bad);
    assert!(err.contains("search_catalogue"), "{err}");
}

/// A profile's `ner_min_score` decides which of the model's spans count: lower finds
/// spans the default leaves out (here a commerce word taken for a name), 1.0 none.
#[test]
fn each_profile_sets_its_own_ner_threshold() {
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = tempfile::tempdir().unwrap();
    let scan = |threshold: Option<&str>, text: &str| -> Vec<(String, f64)> {
        let line = threshold.map_or(String::new(), |t| format!("      ner_min_score: {t}\n"));
        let config = mock_config(&format!(
            "pii:\n  default_profile: p\n  ner:\n    model_dir: {root}/ner-models/rampart\n    \
             runtime: {root}/ner-models/libonnxruntime.so.1.32.0\n  profiles:\n    p:\n      \
             ner: required\n{line}"
        ));
        let path = dir.path().join("warden.yaml");
        std::fs::write(&path, config).unwrap();
        let out = std::process::Command::new(BIN)
            .args(["pii", "scan", "--config"])
            .arg(&path)
            .arg(text)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["type"].as_str().unwrap().to_string(),
                    f["score"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    let shop = "Price check: SKU-67458-42 is 448,95 EUR list, member price $433.00; \
                EAN 5527520973812; warehouse Valencia.";
    assert_eq!(scan(None, shop), []);
    let low = scan(Some("0.5"), shop);
    assert!(
        low.iter().any(|(t, s)| t == "PERSON" && *s < 0.65),
        "{low:?}"
    );
    // No cue before the name: only the model finds it.
    let name = "Jane Doe says her parcel has not arrived.";
    assert_eq!(scan(None, name).len(), 1);
    assert_eq!(scan(Some("1.0"), name), []);
}

/// `ner: optional` without the model: patterns only, counted in the metric and flagged
/// in the audit record.
#[tokio::test]
async fn optional_ner_falls_back_to_patterns_and_says_so_in_the_audit_record() {
    let mock = MockProvider::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let audit = format!(
        "audit:\n  spool_dir: {0}/spool\n  sink:\n    kind: file\n    dir: {0}/archive\n",
        dir.path().display()
    );
    let mut w = Warden::start(&ner_config_with(
        &mock,
        "/nonexistent/model",
        "optional",
        &audit,
    ));
    let r = post_json(
        &w.url("/v1/chat/completions"),
        &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": format!("mail {EMAIL}")}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        provider_saw(&mock).await.contains("<EMAIL_1>"),
        "patterns still run"
    );
    let metrics = get(&w.admin_url("/metrics")).await.text();
    assert!(
        metrics.contains("warden_pii_ner_total{outcome=\"unavailable\"} 1"),
        "{metrics}"
    );
    w.terminate();
    assert_eq!(w.wait_exit(std::time::Duration::from_secs(15)), Some(0));
    let records = all_text(dir.path());
    assert!(records.contains("\"pii_ner_skipped\":true"), "{records}");
}

/// Text beyond a request's allowance of model work (bytes or 512-token windows) is not
/// run through the model: `ner: optional` answers with the patterns alone (and the audit
/// record says so), `ner: required` answers 413. A text of one repeated punctuation mark
/// (one token per character) no longer occupies the model.
#[tokio::test]
async fn model_work_per_request_is_bounded() {
    let mock = MockProvider::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let model_dir = format!("{}/ner-models/rampart", env!("CARGO_MANIFEST_DIR"));
    let limits = "    max_request_bytes: 65536\n    max_request_windows: 2\n";
    let audit = format!(
        "audit:\n  spool_dir: {0}/spool\n  sink:\n    kind: file\n    dir: {0}/archive\n",
        dir.path().display()
    );
    let optional = ner_config_with(&mock, &model_dir, "optional", &audit)
        .replace("  profiles:\n", &format!("{limits}  profiles:\n"));
    let mut w = Warden::start(&optional);
    let flood = format!("{} mail {EMAIL}", "! ".repeat(3000));
    let started = std::time::Instant::now();
    let r = post_json(
        &w.url("/v1/chat/completions"),
        &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": flood}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(
        provider_saw(&mock).await.contains("<EMAIL_1>"),
        "patterns still ran"
    );
    let metrics = get(&w.admin_url("/metrics")).await.text();
    assert!(
        metrics.contains("warden_pii_ner_total{outcome=\"over_budget\"} 1"),
        "{metrics}"
    );
    w.terminate();
    assert_eq!(w.wait_exit(std::time::Duration::from_secs(15)), Some(0));
    assert!(all_text(dir.path()).contains("\"pii_ner_skipped\":true"));

    let required = ner_config_with(&mock, &model_dir, "required", "")
        .replace("  profiles:\n", &format!("{limits}  profiles:\n"));
    let w = Warden::start(&required);
    let r = post_json(
        &w.url("/v1/chat/completions"),
        &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x".repeat(70_000)}]}),
    )
    .await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "pii_too_large");
    let r = post_json(
        &w.url("/v1/chat/completions"),
        &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi, I'm Jane Doe."}]}),
    )
    .await;
    assert_eq!(r.status, 200, "small requests still pass: {}", r.text());
}
