"""The Helm chart (charts/warden) and its sidecar example (charts/examples/shop-assistant):
strict lint, rendering in both modes with default and other values, every manifest
validated against the Kubernetes schemas, what the manifests must say (probes,
securityContext, grace period, the sidecar's env), values the schema refuses, and the
rendered warden.yaml and policy ConfigMap run by the real binary (WARDEN_BIN)."""

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "warden"
EXAMPLE = REPO / "charts" / "examples" / "shop-assistant"
# The chart's floor (Chart.yaml kubeVersion) and the newest release the validator knows.
KUBE_VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]
# Kinds from CRDs, which the Kubernetes schemas do not describe.
CRD_KINDS = {"ServiceMonitor"}

PRODUCTION = {
    "config": {
        "audit": {
            "sink": {
                "kind": "s3",
                "bucket": "warden-audit",
                "region": "eu-west-1",
                "object_lock": {"mode": "compliance", "retain_days": 400},
            }
        },
        "state": {"backend": "redis", "redis": {"url": "redis://redis:6379/"}},
        "server": {"shutdown_grace_seconds": 45},
    },
    "secrets": {
        "adminToken": {"name": "warden-admin", "key": "token"},
        "stateKey": {"name": "warden-keys", "key": "state"},
        "piiHashKey": {"name": "warden-keys", "key": "pii-hash"},
        "auditSubjectKey": {"name": "warden-keys", "key": "audit-subject"},
        "auditSigningKey": {"name": "warden-audit-signing", "key": "signing-key.pem"},
        "env": [{"env": "OPENAI_API_KEY", "name": "provider-keys", "key": "openai"}],
    },
    "audit": {"persistence": {"enabled": True, "size": "5Gi", "storageClassName": "fast"}},
    "autoscaling": {"enabled": False},
    "replicaCount": 3,
    "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
    "networkPolicy": {
        "enabled": True,
        "proxyFrom": [{"namespaceSelector": {"matchLabels": {"team": "storefront"}}}],
        "adminFrom": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}],
    },
    "policies": {"files": {"90-extra.yaml": "apiVersion: warden/v1\nkind: Policy\nrules: []\n"}},
    "tls": {"secretName": "warden-tls", "clientAuth": "optional"},
}


def render(path, values=None, name="shop"):
    """Every manifest the chart renders, as parsed objects."""
    out = helm.Chart.load(str(path)).render(values or {}, name=name, namespace="commerce")
    docs = []
    for template, text in sorted(out.items()):
        if template.endswith("NOTES.txt"):
            continue
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def by_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def one(docs, kind, name=None):
    found = [d for d in by_kind(docs, kind) if name is None or d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {[d['metadata']['name'] for d in found]}"
    return found[0]


def pod_spec(workload):
    return workload["spec"]["template"]["spec"]


def container(spec, name="warden", where="containers"):
    return next(c for c in spec[where] if c["name"] == name)


def env_of(c):
    return {e["name"]: e for e in c.get("env", [])}


def rendered_config(docs):
    return yaml.safe_load(one(docs, "ConfigMap", "shop-warden-config")["data"]["warden.yaml"])


def assert_valid(docs):
    for doc in docs:
        if doc["kind"] in CRD_KINDS:
            continue
        for version in KUBE_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)


def assert_hardened(c):
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 65532
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}


def assert_probes(c, admin_port=9090):
    assert {p["name"]: p["containerPort"] for p in c["ports"]}["admin"] == admin_port
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    assert c["lifecycle"]["preStop"] == {"sleep": {"seconds": 5}}


def test_both_charts_lint_strictly_with_default_and_other_values():
    for path, values in [(CHART, None), (CHART, PRODUCTION), (CHART, {"mode": "sidecar"}), (EXAMPLE, None)]:
        report = helm.lint(str(path), values, strict=True, kube_version="v1.30.0")
        problems = [m for m in report["messages"] if m["severity"] >= 2]
        assert not report["errors"] and not problems, (path, values, report)


def test_gateway_defaults():
    docs = render(CHART)
    assert_valid(docs)
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(
        ["ConfigMap", "ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget",
         "Service", "Service", "ServiceAccount"]
    ), kinds
    deployment = one(docs, "Deployment")
    spec = pod_spec(deployment)
    c = container(spec)
    assert_hardened(c)
    assert_probes(c)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["automountServiceAccountToken"] is False
    assert c["image"] == "warden:0.1.0"
    assert c["args"] == ["serve", "--config", "/etc/warden/warden.yaml"]
    assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]

    # The grace period covers the preStop pause, Warden's drain and the audit flush.
    config = rendered_config(docs)
    assert config["server"]["shutdown_grace_seconds"] == 30
    assert spec["terminationGracePeriodSeconds"] == 5 + 30 + 30

    # Gateway listeners; a chain per pod, closed at shutdown (its emptyDir spool goes away).
    assert config["listen"] == "0.0.0.0:8080" and config["admin_listen"] == "0.0.0.0:9090"
    assert config["audit"]["chain_id"] == "${POD_NAME}"
    assert config["audit"]["close_on_shutdown"] is True
    assert env_of(c)["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert {"name": "warden-var", "emptyDir": {"sizeLimit": "2Gi"}} in spec["volumes"]
    assert "admin_token" not in config

    # Every shipped policy file is in the policy ConfigMap, unchanged; it is mounted as a
    # directory (so the kubelet's updates reach it), warden.yaml as one file.
    policies = one(docs, "ConfigMap", "shop-warden-policies")["data"]
    shipped = {p.name: p.read_text() for p in (REPO / "policies").glob("*.yaml")}
    assert policies == shipped
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["warden-policies"] == {"name": "warden-policies", "mountPath": "/etc/warden/policies", "readOnly": True}
    assert mounts["warden-config"]["subPath"] == "warden.yaml"

    hpa = one(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "shop-warden"}
    assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"
    admin = one(docs, "Service", "shop-warden-admin")
    assert admin["spec"]["ports"][0]["targetPort"] == "admin"
    assert one(docs, "Service", "shop-warden")["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]


def test_gateway_for_production():
    docs = render(CHART, PRODUCTION)
    assert_valid(docs)
    assert not by_kind(docs, "Deployment") and not by_kind(docs, "HorizontalPodAutoscaler")
    sts = one(docs, "StatefulSet")
    assert sts["spec"]["replicas"] == 3
    assert sts["spec"]["serviceName"] == "shop-warden-pods"
    assert one(docs, "Service", "shop-warden-pods")["spec"]["clusterIP"] == "None"
    claim = sts["spec"]["volumeClaimTemplates"][0]
    assert claim["metadata"]["name"] == "warden-var"
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert claim["spec"]["storageClassName"] == "fast"
    spec = pod_spec(sts)
    assert "warden-var" not in {v["name"] for v in spec["volumes"]}, "the claim, not an emptyDir"
    assert spec["terminationGracePeriodSeconds"] == 5 + 45 + 30

    config = rendered_config(docs)
    # A StatefulSet pod comes back under its name with its spool: its chain stays open.
    assert config["audit"]["close_on_shutdown"] is False
    assert config["audit"]["signing_key_file"] == "/etc/warden/secrets/audit/signing-key.pem"
    assert config["audit"]["sink"]["kind"] == "s3"
    assert config["state"]["backend"] == "redis"
    assert config["admin_token"] == "${WARDEN_ADMIN_TOKEN}"
    # What the values did not touch is the shipped file's.
    shipped = yaml.safe_load((REPO / "warden.yaml").read_text())
    assert config["pii"] == shipped["pii"] and config["limits"] == shipped["limits"]

    c = container(spec)
    env = env_of(c)
    for var, (secret, key) in {
        "WARDEN_ADMIN_TOKEN": ("warden-admin", "token"),
        "WARDEN_STATE_KEY": ("warden-keys", "state"),
        "WARDEN_PII_HASH_KEY": ("warden-keys", "pii-hash"),
        "WARDEN_AUDIT_SUBJECT_KEY": ("warden-keys", "audit-subject"),
        "OPENAI_API_KEY": ("provider-keys", "openai"),
    }.items():
        assert env[var]["valueFrom"]["secretKeyRef"] == {"name": secret, "key": key}, var
        assert "value" not in env[var]
    key_volume = next(v for v in spec["volumes"] if v["name"] == "warden-audit-key")
    assert key_volume["secret"]["secretName"] == "warden-audit-signing"
    assert key_volume["secret"]["defaultMode"] == 0o400
    assert {"name": "warden-audit-key", "mountPath": "/etc/warden/secrets/audit", "readOnly": True} in c["volumeMounts"]

    monitor = one(docs, "ServiceMonitor")
    assert monitor["spec"]["endpoints"] == [{"port": "admin", "path": "/metrics", "interval": "30s"}]
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    admin_service = one(docs, "Service", "shop-warden-admin")
    assert all(admin_service["metadata"]["labels"].get(k) == v for k, v in monitor["spec"]["selector"]["matchLabels"].items())
    netpol = one(docs, "NetworkPolicy")
    proxy_rule, admin_rule = netpol["spec"]["ingress"]
    assert proxy_rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert proxy_rule["from"] == PRODUCTION["networkPolicy"]["proxyFrom"]
    assert admin_rule["from"] == PRODUCTION["networkPolicy"]["adminFrom"]

    policies = one(docs, "ConfigMap", "shop-warden-policies")["data"]
    assert policies["90-extra.yaml"].startswith("apiVersion: warden/v1")
    assert "20-storefront.yaml" in policies


def test_tls_from_a_secret():
    docs = render(CHART, {"tls": {"secretName": "warden-tls", "clientAuth": "required"}})
    assert_valid(docs)
    config = rendered_config(docs)
    assert config["server"]["tls"] == {
        "cert_file": "/etc/warden/tls/tls.crt",
        "key_file": "/etc/warden/tls/tls.key",
        "client_ca_file": "/etc/warden/tls/ca.crt",
        "client_auth": "required",
    }
    assert config["server"]["max_body_bytes"] == 4194304, "the shipped server keys stay"
    spec = pod_spec(one(docs, "Deployment"))
    volume = next(v for v in spec["volumes"] if v["name"] == "warden-tls")
    assert volume["secret"]["secretName"] == "warden-tls"
    mount = next(m for m in container(spec)["volumeMounts"] if m["name"] == "warden-tls")
    assert mount == {"name": "warden-tls", "mountPath": "/etc/warden/tls", "readOnly": True}
    assert "subPath" not in mount, "a subPath mount would never see a renewal"
    # h2c is for plain HTTP only.
    with pytest.raises(helm.HelmValuesError):
        render(CHART, {"tls": {"secretName": "warden-tls"}, "h2c": True})
    assert rendered_config(render(CHART, {"h2c": True}))["server"]["h2c"] is True


def test_config_changes_roll_the_pods_and_policy_changes_do_not():
    def checksum(values):
        return pod_spec_annotations(render(CHART, values))["checksum/warden-config"]

    def pod_spec_annotations(docs):
        return one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]

    base = checksum({})
    assert checksum({"config": {"log": {"level": "debug"}}}) != base
    assert checksum({"policies": {"files": {"99-more.yaml": "kind: Policy\n"}}}) == base


def test_sidecar_example():
    docs = render(EXAMPLE)
    assert_valid(docs)
    # The subchart renders only Warden's ConfigMaps; the app's Deployment carries Warden.
    assert sorted(d["kind"] for d in docs) == ["ConfigMap", "ConfigMap", "Deployment"]
    app = one(docs, "Deployment")
    spec = pod_spec(app)
    warden = container(spec, where="initContainers")
    assert warden["restartPolicy"] == "Always", "a native sidecar: up before the app, down after it"
    assert_hardened(warden)
    assert_probes(warden)
    assert env_of(warden)["OPENAI_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "shop-assistant-openai", "key": "api-key"}
    app_container = container(spec, "app")
    assert env_of(app_container)["OPENAI_BASE_URL"]["value"] == "http://127.0.0.1:8080/v1"
    assert "OPENAI_API_KEY" not in {e["name"] for e in warden.get("env", []) if "value" in e}

    config = rendered_config(docs)
    assert config["listen"] == "127.0.0.1:8080", "only the app in the pod reaches the proxy"
    assert config["providers"]["openai"]["api_key"] == "${OPENAI_API_KEY}"
    assert config["audit"]["close_on_shutdown"] is True
    assert spec["terminationGracePeriodSeconds"] == 5 + 30 + 30
    volumes = {v["name"] for v in spec["volumes"]}
    assert {"warden-config", "warden-policies", "warden-var", "warden-tmp"} <= volumes
    assert app["spec"]["template"]["metadata"]["annotations"]["checksum/warden-config"]

    # Without native sidecars it is an ordinary container.
    docs = render(EXAMPLE, {"warden": {"sidecar": {"native": False}}})
    spec = pod_spec(one(docs, "Deployment"))
    assert "restartPolicy" not in container(spec, where="initContainers")


@pytest.mark.parametrize(
    "values, complaint",
    [
        ({"mode": "mesh"}, "/mode"),
        ({"ports": {"http": 70000, "admin": 9090}}, "/ports/http"),
        ({"secrets": {"adminToken": {"name": "warden-admin"}}}, "/secrets/adminToken"),
        ({"secrets": {"env": [{"env": "OPENAI-KEY", "name": "k", "key": "openai"}]}}, "/secrets/env/0"),
        ({"config": {"listen": "0.0.0.0:1"}}, "/config"),
        ({"policies": {"files": {"../escape.yaml": "x"}}}, "invalid propertyName '../escape.yaml'"),
        ({"replicas": 3}, "replicas"),
        ({"autoscaling": {"enabled": True, "minReplicas": 0}}, "/autoscaling/minReplicas"),
        ({"shutdown": {"preStopSeconds": -1, "auditFlushSeconds": 30}}, "/shutdown/preStopSeconds"),
    ],
)
def test_schema_refuses_bad_values(values, complaint):
    with pytest.raises(helm.HelmValuesError) as refused:
        render(CHART, values)
    assert complaint in str(refused.value)


def test_an_s3_sink_without_a_signing_key_fails_at_install():
    values = {"config": {"audit": {"sink": {"kind": "s3", "bucket": "b", "region": "r"}}}}
    with pytest.raises(helm.HelmError) as refused:
        render(CHART, values)
    assert "secrets.auditSigningKey" in str(refused.value)


# --- the rendered files, run ---------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url, body=None):
    request = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_ready(proc, url, log, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        assert proc.poll() is None, f"warden exited: {log.read_text()}"
        try:
            if http(url)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"warden was not ready within {seconds} s: {log.read_text()}")


def lay_out_image(docs, root):
    """/etc/warden as the chart mounts it: the rendered warden.yaml and policy files over
    the image's models and commerce term lists."""
    (root / "warden.yaml").write_text(one(docs, "ConfigMap", "shop-warden-config")["data"]["warden.yaml"])
    (root / "policies").mkdir()
    for name, text in one(docs, "ConfigMap", "shop-warden-policies")["data"].items():
        (root / "policies" / name).write_text(text)
    (root / "examples").mkdir()
    os.symlink(REPO / "examples" / "commerce", root / "examples" / "commerce")
    os.symlink(REPO / "ner-models", root / "ner-models")
    (root / "var").mkdir()


@pytest.fixture
def warden_bin():
    binary = os.environ.get("WARDEN_BIN")
    if not binary or not os.path.exists(binary):
        pytest.fail(f"WARDEN_BIN must point at the warden binary (got {binary!r})")
    return binary


def test_rendered_gateway_files_serve_and_close_the_chain_at_shutdown(warden_bin):
    docs = render(CHART)
    root = pathlib.Path(tempfile.mkdtemp(prefix="warden-chart-"))
    try:
        lay_out_image(docs, root)
        port, admin = free_port(), free_port()
        log = open(root / "warden.log", "w")
        # The pod's listeners are 0.0.0.0; a test binds only to 127.0.0.1.
        proc = subprocess.Popen(
            [warden_bin, "serve", "--config", str(root / "warden.yaml"),
             "--listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{admin}"],
            cwd=root, env={**os.environ, "POD_NAME": "shop-warden-7d9f-x2k4q"},
            stdout=subprocess.DEVNULL, stderr=log,
        )
        try:
            wait_ready(proc, f"http://127.0.0.1:{admin}/readyz", root / "warden.log")
            status, body = http(
                f"http://127.0.0.1:{port}/v1/chat/completions",
                json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Do you ship to Lyon?"}]}).encode(),
            )
            assert status == 200, body
            assert json.loads(body)["choices"][0]["message"]["content"]
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0, (root / "warden.log").read_text()
        # The pod's chain, named after it, ends with a digest that says it is closed.
        digests = []
        for path in (root / "var" / "audit" / "archive").rglob("*"):
            if path.is_file() and path.suffix == ".json":
                d = json.loads(path.read_text())
                if d.get("chain") == "shop-warden-7d9f-x2k4q":
                    digests.append(d)
        assert digests, sorted(str(p) for p in (root / "var").rglob("*"))
        last = max(digests, key=lambda d: d["number"])
        assert last.get("closed") is True, last
    finally:
        shutil.rmtree(root, ignore_errors=True)
