"""Turns the k6 summaries of benches/load/run.sh into a Markdown report: per rate and mode,
achieved RPS, failures, p50/p90/p99 latency (and time to first byte for streams) for the
mock provider directly and through Warden, and the latency Warden adds."""

import json
import os
import platform
import subprocess
import sys


def load(work, name):
    with open(os.path.join(work, f"{name}.json")) as f:
        m = json.load(f)["metrics"]
    dur = m["http_req_duration"]
    ttfb = m["http_req_waiting"]
    reqs = m["http_reqs"]
    failed = m.get("http_req_failed", {}).get("value", 0.0)
    checks = m.get("checks", {})
    return {
        "rps": reqs["rate"],
        "count": reqs["count"],
        "failed": failed,
        "checks_failed": checks.get("fails", 0),
        "p50": dur["med"],
        "p90": dur["p(90)"],
        "p99": dur["p(99)"],
        "ttfb50": ttfb["med"],
        "ttfb99": ttfb["p(99)"],
    }


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cores = os.cpu_count()
    mem = subprocess.run(["free", "-g"], capture_output=True, text=True).stdout.split("\n")[1].split()[1]
    return f"{cores} cores ({cpu}), {mem} GiB RAM, Linux {platform.release()}"


def main():
    work, rates, duration, idle_kb, loaded_kb, pii_rate, inferred, hits = sys.argv[1:9]
    baseline = sys.argv[9] if len(sys.argv) > 9 else ""
    print("# Load harness results\n")
    print(f"- machine: {machine()}")
    print("- generator: k6 constant-arrival-rate on the same machine (it shares the 2 cores with")
    print("  the mock provider and Warden), keep-alive connections, loopback")
    print(f"- {duration} per cell, release build, `benches/load/run.sh`")
    print(f"- Warden RSS: {int(idle_kb) / 1024:.1f} MiB idle, {int(loaded_kb) / 1024:.1f} MiB after the run\n")
    for stream in ("0", "1"):
        if not any(os.path.exists(os.path.join(work, f"direct-s{stream}-r{r}.json")) for r in rates.split()):
            continue  # not measured in this run (SCENARIOS)
        title = "Streaming (SSE), time to first byte and full stream" if stream == "1" else "Non-stream"
        print(f"## {title}\n")
        print("| rate | path | achieved RPS | failed | p50 ms | p90 ms | p99 ms | TTFB p50 ms | TTFB p99 ms |")
        print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        for rate in rates.split():
            if not os.path.exists(os.path.join(work, f"direct-s{stream}-r{rate}.json")):
                continue  # not measured in this run (SCENARIOS)
            d = load(work, f"direct-s{stream}-r{rate}")
            w = load(work, f"warden-s{stream}-r{rate}")
            for name, r in (("direct", d), ("warden", w)):
                print(
                    f"| {rate} | {name} | {r['rps']:.0f} | {r['failed'] * 100:.2f}% | {r['p50']:.3f} | {r['p90']:.3f} "
                    f"| {r['p99']:.3f} | {r['ttfb50']:.3f} | {r['ttfb99']:.3f} |"
                )
            print(
                f"| {rate} | **added** | | | **{w['p50'] - d['p50']:+.3f}** | {w['p90'] - d['p90']:+.3f} "
                f"| **{w['p99'] - d['p99']:+.3f}** | **{w['ttfb50'] - d['ttfb50']:+.3f}** | {w['ttfb99'] - d['ttfb99']:+.3f} |"
            )
        print()
    scenario(work, rates, "auth", "With authentication and policy (non-stream)", [
        "RS256 JWT verified against the issuer's JWKS (warm cache) and the `policies/` set deciding,",
        "compared with the plain proxy and the direct path of the same run.",
    ], "warden + auth + policy")
    scenario(work, rates, "audit", "With the audit log on (non-stream)", [
        "Every request appended to the spool before its answer (JCS, SHA-256 chain, group fsync every",
        "20 ms, file sink), compared with the plain proxy and the direct path of the same run.",
    ], "warden + audit")
    scenario(work, rates, "limits-local", "With limits on, in process (non-stream)", [
        "Request rate, token rate (prompt counted with o200k_base + max_tokens), a concurrency slot and",
        "a token budget checked per request and settled with the usage afterwards, in process.",
    ], "warden + limits (local)")
    scenario(work, rates, "limits-redis", "With limits on, in Redis (non-stream)", [
        "The same four counters in a Redis server on loopback: one Lua script per admission, one per",
        "settlement.",
    ], "warden + limits (redis)")
    pii(work, pii_rate, inferred, hits)
    tools(work)
    audit_ab(work, rates.split()[0])
    telemetry_ab(work, rates.split()[0])
    tls_ab(work, rates.split()[0])
    binary_ab(work, rates.split()[0], baseline)
    responses_vs_chat(work)


def responses_vs_chat(work):
    """The latency Warden adds to the Responses API and to chat, each over the direct path
    measured in the same repeat, and the median difference."""
    if not os.path.exists(os.path.join(work, "ra-s0-1-chat-direct.json")):
        return
    rate = os.environ.get("RESPONSES_RATE", "1000")
    print(f"## The Responses API vs chat completions ({rate} RPS)\n")
    print("Per repeat: the mock provider directly and through Warden (the plain configuration), for")
    print("chat completions and for `POST /v1/responses`, the API measured first alternating. Added =")
    print("p(Warden) − p(direct) of the same API and repeat; Δ = responses' added − chat's added.\n")
    for stream in ("0", "1"):
        title = "stream (full response)" if stream == "1" else "non-stream"
        print(f"### {title}\n")
        print("| repeat | chat direct p50 | chat added p50 | responses direct p50 | responses added p50 | Δ p50 | responses added p99 | failed |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        deltas, i = [], 1
        while os.path.exists(os.path.join(work, f"ra-s{stream}-{i}-chat-direct.json")):
            c = {k: load(work, f"ra-s{stream}-{i}-chat-{k}") for k in ("direct", "warden")}
            r = {k: load(work, f"ra-s{stream}-{i}-responses-{k}") for k in ("direct", "warden")}
            chat_added = c["warden"]["p50"] - c["direct"]["p50"]
            resp_added = r["warden"]["p50"] - r["direct"]["p50"]
            deltas.append(resp_added - chat_added)
            failed = max(x["failed"] for x in (*c.values(), *r.values())) * 100
            print(f"| {i} | {c['direct']['p50']:.3f} | {chat_added:+.3f} | {r['direct']['p50']:.3f} | {resp_added:+.3f} | {deltas[-1]:+.3f} | {r['warden']['p99'] - r['direct']['p99']:+.3f} | {failed:.2f}% |")
            i += 1
        print(f"| **median** | | | | | **{median(deltas):+.3f}** | | |")
        print()


def audit_ab(work, rate):
    """Alternating plain / audit-on cells and the median of their differences."""
    pairs = []
    i = 1
    while os.path.exists(os.path.join(work, f"ab-plain-{i}.json")):
        pairs.append((load(work, f"ab-plain-{i}"), load(work, f"ab-audit-{i}")))
        i += 1
    if not pairs:
        return
    print(f"## Audit on vs off, alternating (non-stream, {rate} RPS)\n")
    print("The plain proxy and the same proxy with the audit log on (spool, group fsync, file sink),")
    print("measured one after the other in ABBA order, so a change in the machine's load hits both.\n")
    print("| pair | plain p50 | audit p50 | Δ p50 | plain p99 | audit p99 | Δ p99 | failed |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    d50, d99 = [], []
    for n, (p, a) in enumerate(pairs, 1):
        d50.append(a["p50"] - p["p50"])
        d99.append(a["p99"] - p["p99"])
        print(f"| {n} | {p['p50']:.3f} | {a['p50']:.3f} | {d50[-1]:+.3f} | {p['p99']:.3f} | {a['p99']:.3f} | {d99[-1]:+.3f} | {(p['failed'] + a['failed']) * 100:.2f}% |")
    med = lambda xs: sorted(xs)[len(xs) // 2] if len(xs) % 2 else sum(sorted(xs)[len(xs) // 2 - 1:len(xs) // 2 + 1]) / 2
    print(f"| **median** | | | **{med(d50):+.3f}** | | | **{med(d99):+.3f}** | |")
    print()


def ab_pairs(work, prefix, a, b):
    """Tables of ABBA pairs (cells PREFIX-s{stream}-{i}-{direct,A,B}): per pair the latency
    A and B each add over the direct path measured next to them, and the median of B − A.
    False when the run has no such cells."""
    if not os.path.exists(os.path.join(work, f"{prefix}-s0-1-{b}.json")):
        return False
    for stream, kind in (("0", "non-stream"), ("1", "stream (full response)")):
        print(f"### {kind}\n")
        print(f"| pair | {a} added p50 | {b} added p50 | Δ p50 | {a} added p99 | {b} added p99 | Δ p99 | failed |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        d50, d99 = [], []
        i = 1
        while os.path.exists(os.path.join(work, f"{prefix}-s{stream}-{i}-{b}.json")):
            d = load(work, f"{prefix}-s{stream}-{i}-direct")
            x = load(work, f"{prefix}-s{stream}-{i}-{a}")
            y = load(work, f"{prefix}-s{stream}-{i}-{b}")
            x50, y50 = x["p50"] - d["p50"], y["p50"] - d["p50"]
            x99, y99 = x["p99"] - d["p99"], y["p99"] - d["p99"]
            d50.append(y50 - x50)
            d99.append(y99 - x99)
            failed = (x["failed"] + y["failed"]) * 100
            print(f"| {i} | {x50:+.3f} | {y50:+.3f} | {d50[-1]:+.3f} | {x99:+.3f} | {y99:+.3f} | {d99[-1]:+.3f} | {failed:.2f}% |")
            i += 1
        print(f"| **median** | | | **{median(d50):+.3f}** | | | **{median(d99):+.3f}** | |")
        print()
    return True


def telemetry_ab(work, rate):
    if not os.path.exists(os.path.join(work, "tab-s0-1-traced.json")):
        return
    print(f"## Traces on vs off, alternating ({rate} RPS)\n")
    print("The plain proxy and the same proxy exporting every request's trace (100 % sampling, a span")
    print("per stage and per provider attempt, OTLP/HTTP protobuf to a sink on loopback), measured in ABBA")
    print("order with the direct path right before each pair. *Added* is p(Warden) − p(direct) of the")
    print("same pair; Δ is the traced proxy's added latency minus the plain one's.\n")
    ab_pairs(work, "tab", "plain", "traced")
    export = os.path.join(work, "telemetry-export.txt")
    if os.path.exists(export):
        print("Spans exported by the traced proxy over the whole run, and what the sink received:\n")
        print("```")
        print(open(export).read().strip())
        print("```\n")


def tls_ab(work, rate):
    if not os.path.exists(os.path.join(work, "lab-s0-1-https.json")):
        return
    print(f"## HTTPS vs HTTP, alternating ({rate} RPS)\n")
    print("The plain proxy over HTTP and the same proxy over HTTPS (TLS 1.3 with rustls, keep-alive")
    print("connections, so handshakes are rare and the cost is per-byte encryption), measured in ABBA order")
    print("with the direct path (HTTP) right before each pair. *Added* is p(Warden) − p(direct) of the")
    print("same pair; Δ is the HTTPS proxy's added latency minus the HTTP one's.\n")
    ab_pairs(work, "lab", "plain", "https")


def median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def binary_ab(work, rate, baseline):
    """Two builds alternately (ABBA), and the median difference of what they add."""
    if not os.path.exists(os.path.join(work, "bab-s0-1-new.json")):
        return
    print(f"## This build vs the baseline build, alternating ({rate} RPS)\n")
    print(f"Baseline: `{baseline}`. Both serve the plain configuration from the same mock provider;")
    print("each pair is measured in ABBA order with the direct path right before it. *Added* is")
    print("p(Warden) − p(direct) of the same pair; Δ is this build's added latency minus the baseline's.\n")
    ab_pairs(work, "bab", "base", "new")


def pii(work, rate, inferred, hits):
    """PII redaction with patterns and the NER model against the direct path."""
    if not os.path.exists(os.path.join(work, "warden-pii1.json")):
        return
    print("## With PII redaction, patterns + NER (non-stream)\n")
    print("The standard profile (pseudonymize, restore in the answer) with the Rampart NER model on one")
    print("intra-op thread. *1-turn*: a ~128-token support message with a name, an e-mail address and")
    print("a phone number, new text every request (one inference each). *10th turn*: nine earlier turns")
    print("(four such messages) served from the NER cache, plus a new short last message.")
    print(f"The Warden under test counted {inferred} inferences and {hits} cache hits over the whole run.\n")
    print("| rate | chat | path | achieved RPS | failed | p50 ms | p90 ms | p99 ms |")
    print("|---:|---|---|---:|---:|---:|---:|---:|")
    for mode, chat in (("pii1", "1-turn"), ("pii10", "10th turn")):
        d = load(work, f"direct-{mode}")
        w = load(work, f"warden-{mode}")
        for name, r in (("direct", d), ("warden + PII", w)):
            print(f"| {rate} | {chat} | {name} | {r['rps']:.0f} | {r['failed'] * 100:.2f}% | {r['p50']:.3f} | {r['p90']:.3f} | {r['p99']:.3f} |")
        print(f"| {rate} | {chat} | **added** | | | **{w['p50'] - d['p50']:+.3f}** | {w['p90'] - d['p90']:+.3f} | **{w['p99'] - d['p99']:+.3f}** |")
    print()


def tools(work):
    """Tool calls through POST /v1/tools/{name}/invoke against the backend called directly."""
    if not os.path.exists(os.path.join(work, "tools-warden.json")):
        return
    with open(os.path.join(work, "tools-rates")) as f:
        rate, ner_rate = f.read().split()
    print("## Tool calls through Warden (`POST /v1/tools/{name}/invoke`)\n")
    print("*direct*: the backend request Warden makes, sent to `warden mock-commerce` itself.")
    print("*warden*: the same call through Warden — route, policy decision, JSON Schema validation,")
    print("the backend call (pooled connection), the result redacted (no limits or audit log in these")
    print("cells). `get_price` results are redacted by patterns; `lookup_order` results (customer")
    print("name, address, e-mail) by patterns and the NER model, the same order each time (its texts")
    print("come from the NER cache).\n")
    print("| tool | rate | path | achieved RPS | failed | p50 ms | p90 ms | p99 ms |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for tool, r, d_name, w_name in (("get_price (patterns)", rate, "tools-direct", "tools-warden"),
                                    ("lookup_order (NER)", ner_rate, "tools-ner-direct", "tools-ner-warden")):
        d = load(work, d_name)
        w = load(work, w_name)
        for name, x in (("direct", d), ("warden", w)):
            print(f"| {tool} | {r} | {name} | {x['rps']:.0f} | {x['failed'] * 100:.2f}% | {x['p50']:.3f} | {x['p90']:.3f} | {x['p99']:.3f} |")
        print(f"| {tool} | {r} | **added** | | | **{w['p50'] - d['p50']:+.3f}** | {w['p90'] - d['p90']:+.3f} | **{w['p99'] - d['p99']:+.3f}** |")
    print()


def scenario(work, rates, name, title, intro, label):
    """A non-stream variant of the proxy against the plain proxy and the direct path."""
    measured = [r for r in rates.split() if os.path.exists(os.path.join(work, f"{name}-s0-r{r}.json"))]
    if not measured:
        return
    print(f"## {title}\n")
    print("\n".join(intro) + "\n")
    print("| rate | path | achieved RPS | failed | p50 ms | p90 ms | p99 ms |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for rate in measured:
        d = load(work, f"direct-s0-r{rate}")
        w = load(work, f"warden-s0-r{rate}")
        a = load(work, f"{name}-s0-r{rate}")
        print(f"| {rate} | {label} | {a['rps']:.0f} | {a['failed'] * 100:.2f}% | {a['p50']:.3f} | {a['p90']:.3f} | {a['p99']:.3f} |")
        print(f"| {rate} | added vs direct | | | **{a['p50'] - d['p50']:+.3f}** | {a['p90'] - d['p90']:+.3f} | **{a['p99'] - d['p99']:+.3f}** |")
        print(f"| {rate} | added vs plain proxy | | | {a['p50'] - w['p50']:+.3f} | {a['p90'] - w['p90']:+.3f} | {a['p99'] - w['p99']:+.3f} |")
    print()

if __name__ == "__main__":
    main()
