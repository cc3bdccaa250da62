//! Property tests over the code that reads what clients and providers send: the SSE
//! parser, the request parser with the PII walk, the redactor and restorer (random
//! Unicode with case-changing characters and placeholder-like text), the streamed output
//! scan, the policy and CEL loaders, configuration loading and JWT header parsing. None
//! may panic, and each keeps its promise (same events however a stream is cut, no planted
//! value left, a pseudonymized text restores to itself). `make test` runs a short round
//! (`PROPTEST_CASES`, 256 by default); `make fuzz` runs a million cases per target.

use proptest::prelude::*;
use serde_json::{Value, json};

use warden::auth::AuthError;
use warden::config::{PiiProfile, RestoreSource};
use warden::openai::{ApiRequest, Endpoint, sse};
use warden::pii::output::ScanWindow;
use warden::pii::{Profile, Redactor, Vault};

/// Values the redactor must find wherever they stand between spaces.
const PLANTED: &[&str] = &[
    "jane.doe@example.com",
    "4111 1111 1111 1111",
    "DE89 3704 0044 0532 0130 00",
    "AKIAIOSFODNN7EXAMPLE",
];

/// Text fragments chosen to break assumptions: characters whose lower case has another
/// byte length, combining marks, right-to-left text, emoji, placeholder-like text, JSON
/// and SSE syntax, numbers that look like identifiers, and table headers, quotes and
/// delimiters.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9 .,:;@#+()/-]{0,12}",
        2 => any::<char>().prop_map(String::from),
        1 => prop::sample::select(vec![
            "İ", "ẞ", "Σ", "ǅ", "ﬃ", "e\u{301}", "\u{200b}", "שלום", "🙂", "👩‍👩‍👧",
            "<EMAIL_1>", "<EMAIL_1_abcdef>", "<PHONE_", "<", ">", "\"", "\\", "\n",
            "data: ", "[DONE]", "{\"a\":", "ORD-2026-000123", "+1 415 555 2671",
            "10.0.0.7", "born 12.03.1987", "name;dob;phone\n", "| contact | mobile |\n",
            "\"a, \"\"b\"\"\",", "\t", "|",
        ])
        .prop_map(str::to_string),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..24).prop_map(|v| v.concat())
}

/// Random text with planted values between spaces; the values planted.
fn text_with_planted() -> impl Strategy<Value = (String, Vec<&'static str>)> {
    prop::collection::vec(
        prop_oneof![
            3 => text().prop_map(|t| (t, None)),
            1 => prop::sample::select(PLANTED).prop_map(|p| (p.to_string(), Some(p))),
        ],
        0..12,
    )
    .prop_map(|parts| {
        let planted = parts.iter().filter_map(|(_, p)| *p).collect();
        let text = parts
            .into_iter()
            .map(|(t, _)| t)
            .collect::<Vec<_>>()
            .join(" ");
        (text, planted)
    })
}

fn profile(yaml: &str) -> Profile {
    let settings: PiiProfile = serde_yaml_ng::from_str(yaml).unwrap();
    Profile::new("p", &settings).unwrap()
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        text().prop_map(Value::from),
        prop::sample::select(PLANTED).prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// However a stream is cut into chunks, the parser yields the same events, and it
    /// never panics on any bytes.
    #[test]
    fn sse_events_do_not_depend_on_chunk_boundaries(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut whole = sse::Parser::new(4096);
        let mut expected = Vec::new();
        let whole_ok = whole.feed(&bytes, &mut expected).is_ok();
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        points.sort_unstable();
        let mut parser = sse::Parser::new(4096);
        let mut got = Vec::new();
        let mut from = 0;
        let mut ok = true;
        for p in points.into_iter().chain([bytes.len()]) {
            ok &= parser.feed(&bytes[from..p], &mut got).is_ok();
            from = p;
        }
        if whole_ok && ok {
            prop_assert_eq!(got, expected);
        }
    }

    /// A pseudonymizing profile removes every planted value, and restoring the result
    /// gives the text back exactly — whole, and as a stream cut anywhere.
    #[test]
    fn pseudonymized_text_restores_to_itself(
        (input, planted) in text_with_planted(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let p = profile("default_action: pseudonymize");
        let mut r = Redactor::new(&p, b"k", Some("acme"));
        r.vault = Vault::for_request(input.as_bytes());
        let redacted = r.text(&input).unwrap_or_else(|| input.clone());
        for value in &planted {
            prop_assert!(!redacted.contains(value), "{value:?} left in {redacted:?}");
        }
        let restored = r.vault.restore(&redacted, false).into_owned();
        prop_assert_eq!(&restored, &input);
        let mut points: Vec<usize> = cuts
            .iter()
            .map(|i| redacted.floor_char_boundary(i.index(redacted.len() + 1)))
            .collect();
        points.sort_unstable();
        let mut stream = r.vault.stream(false);
        let (mut shown, mut from) = (String::new(), 0);
        for at in points.into_iter().chain([redacted.len()]) {
            shown.push_str(&stream.push(&r.vault, &redacted[from..at]));
            from = at;
        }
        shown.push_str(&stream.flush(&r.vault));
        prop_assert_eq!(shown, input);
    }

    /// Text a client types in placeholder shape is never restored, whatever the vault
    /// holds and whichever sources it may restore.
    #[test]
    fn client_placeholders_are_plain_text(input in text(), n in 1u32..4) {
        let mut vault = Vault::for_request(input.as_bytes())
            .restoring_only(&[RestoreSource::System, RestoreSource::User]);
        for i in 0..n {
            vault.placeholder(warden::pii::Entity::Email, &format!("v{i}@x.io"), RestoreSource::System);
        }
        let restored = vault.restore(&input, false).into_owned();
        prop_assert_eq!(&restored, &input);
    }

    /// A streamed answer scanned in a bounded window releases none of the planted
    /// values, however it is cut.
    #[test]
    fn streamed_output_scanning_leaves_no_planted_value(
        (input, planted) in text_with_planted(),
        sizes in prop::collection::vec(1usize..40, 1..40),
    ) {
        let p = profile("default_action: redact");
        let mut r = Redactor::for_output(&p, b"k", None);
        let mut window = ScanWindow::new(64);
        let (mut shown, mut rest) = (String::new(), input.as_str());
        for size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let at = rest.floor_char_boundary((*size).min(rest.len())).max(
                rest.chars().next().map_or(0, char::len_utf8),
            );
            let (piece, tail) = rest.split_at(at);
            shown.push_str(&window.push(&mut r, piece));
            rest = tail;
        }
        shown.push_str(&window.flush(&mut r));
        for value in &planted {
            prop_assert!(!shown.contains(value), "{value:?} left in {shown:?}");
        }
    }

    /// Any JSON in any field of a chat request: parsing never panics, and when it
    /// parses, the redacted request is valid JSON without the planted values in the
    /// fields that carry content.
    #[test]
    fn every_field_of_any_request_is_walked(
        extra in prop::collection::btree_map("[a-z_]{1,12}", json_value(), 0..5),
        content in json_value(),
        message_extra in json_value(),
    ) {
        let mut body = json!({"model": "m", "messages": [{"role": "user", "content": content}]});
        for (k, v) in extra {
            if k != "model" && k != "messages" {
                body[k] = v;
            }
        }
        body["messages"][0]["x_extra"] = message_extra;
        let Ok(mut request) = ApiRequest::parse(Endpoint::ChatCompletions, body.to_string().as_bytes()) else {
            return Ok(());
        };
        let _ = request.offered_tools();
        let p = profile("default_action: redact");
        let mut r = Redactor::new(&p, b"k", None);
        if warden::pii::request::redact(&mut request, &mut r, None).is_ok() {
            let out: Value = serde_json::from_slice(&request.to_json()).unwrap();
            let text = out.to_string();
            for value in PLANTED {
                prop_assert!(!text.contains(value), "{value:?} left in {text}");
            }
        }
    }

    /// Random bytes as a request body never panic the parser and always give a 4xx.
    #[test]
    fn any_body_parses_or_is_a_client_error(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        for endpoint in [Endpoint::ChatCompletions, Endpoint::Completions, Endpoint::Embeddings] {
            if let Err(e) = ApiRequest::parse(endpoint, &bytes) {
                prop_assert!(e.status().is_client_error());
            }
        }
    }

    /// Policy files and CEL conditions of any text load or are refused with an error.
    #[test]
    fn policy_and_cel_loaders_never_panic(source in text(), yaml_body in text()) {
        let _ = warden::policy::Condition::<warden::condition::RuleScope>::compile(&source);
        let policy = format!(
            "apiVersion: warden/v1\nkind: Policy\nrules:\n  - name: r\n    effect: allow\n    when: {:?}\n{yaml_body}",
            source
        );
        let _ = warden::policy::load_sources(&[("p.yaml", &policy), ("q.yaml", &yaml_body)]);
    }

    /// Configuration text of any shape loads or is refused with a positioned error.
    #[test]
    fn configuration_loading_never_panics(yaml in text(), key in "[a-z_.]{1,20}") {
        let _ = warden::config::Config::from_str_named(&yaml, "w.yaml");
        let nested = format!("providers:\n  m:\n    kind: mock\nmodels: {{}}\n{key}: {yaml:?}\n");
        let _ = warden::config::Config::from_str_named(&nested, "w.yaml");
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Tokens with any header (alg, kid, crit, jku, x5c, jwk, nonsense) are refused with
    /// a 401 or 503, never accepted and never a panic.
    #[test]
    fn any_jwt_header_is_refused(header in jws_header(), payload in json_value(), sig in "[A-Za-z0-9_-]{0,40}") {
        use base64::Engine;
        let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let mut payload = payload;
        if let (Some(obj), true) = (payload.as_object_mut(), sig.len() % 2 == 0) {
            // Half the tokens name the trusted issuer, so header checks past it run.
            obj.insert("iss".into(), Value::from("http://127.0.0.1:9/"));
        }
        let token = format!("{}.{}.{sig}", b64(&header), b64(&payload));
        let (rt, auth) = jwt_authenticator();
        let result = rt.block_on(auth.authenticate(Some(token), Some("127.0.0.1"), None));
        let err = result.expect_err("a token no issuer signed is never accepted");
        // Refused as invalid (401) or uncheckable (503), never throttled or missing.
        prop_assert!(
            matches!(err, AuthError::Invalid(_) | AuthError::Unavailable(_)),
            "{err:?}"
        );
    }
}

/// JWS headers: mostly objects with a real or bogus `alg`, sometimes the fields a key
/// could be smuggled in (`kid`, `crit`, `jku`, `x5u`, `x5c`, `jwk`), sometimes any JSON.
fn jws_header() -> impl Strategy<Value = Value> {
    let alg = prop::sample::select(vec![
        "RS256", "ES256", "PS256", "EdDSA", "HS256", "none", "RS1", "",
    ]);
    let field = prop::sample::select(vec![
        "kid", "crit", "jku", "x5u", "x5c", "jwk", "typ", "b64", "zip",
    ]);
    prop_oneof![
        4 => (alg, prop::collection::btree_map(field, json_value(), 0..4)).prop_map(|(alg, fields)| {
            let mut header = serde_json::Map::new();
            header.insert("alg".into(), Value::from(alg));
            for (k, v) in fields {
                header.insert(k.to_string(), v);
            }
            Value::Object(header)
        }),
        1 => json_value(),
    ]
}

/// An authenticator trusting one issuer whose keys cannot be fetched (nothing listens),
/// with the runtime it runs on; made once for all cases.
fn jwt_authenticator() -> &'static (tokio::runtime::Runtime, warden::auth::Authenticator) {
    static SHARED: std::sync::OnceLock<(tokio::runtime::Runtime, warden::auth::Authenticator)> =
        std::sync::OnceLock::new();
    SHARED.get_or_init(|| {
        let config: warden::config::AuthConfig = serde_yaml_ng::from_str(
            "jwt_issuers:\n  - issuer: http://127.0.0.1:9/\n    jwks_uri: http://127.0.0.1:9/jwks\n    audiences: [warden]\n    jwks: {timeout_ms: 200}\n",
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        (rt, warden::auth::Authenticator::from_config(&config).unwrap())
    })
}
