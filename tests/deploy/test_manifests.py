"""The packaging, checked statically: the rendered Kubernetes manifests of every kustomization,
the Compose stack, the Prometheus alerts, the Grafana dashboard and the Dockerfile.

These assert the properties the bot relies on at run time (live shard assignment: no fixed plan,
replicas the only knob; probes sized to the identify queue; a shutdown window that covers a pod's
handovers; one image for the bot and its migrations; no secret in the repository) and the
hardening we promise (non-root, read-only root filesystem, no capabilities, no API token).
Rendering needs kubectl (with its bundled kustomize); the tests that need it skip without it.
scripts/check-deploy.sh runs the schema and policy linters on top of this.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZATIONS = ["k8s/base", "k8s/overlays/dev", "k8s/overlays/prod"]

# What each kustomization must come out as: (replicas, SHARD_COUNT). The pods share the shards
# live (app/bot/rebalance.py), so any replica count works; these are the ones we ship.
EXPECTED_SHAPE = {
    "k8s/base": (2, 4),
    "k8s/overlays/dev": (1, 2),
    "k8s/overlays/prod": (4, 16),
}

# Settings that would replace the live assignment with a fixed plan (app.bot.client.
# live_rebalancing): none of them may appear in anything we ship.
FIXED_PLAN_SETTINGS = ("SHARDS_PER_POD", "SHARD_IDS")

# Discord allows one IDENTIFY per 5 s per bucket; with max_concurrency 1 all shards share one.
# A cold start of the whole cluster identifies every shard through that one queue.
IDENTIFY_INTERVAL_S = 5
# Least slack the startup probe must leave beyond the identify queue itself.
STARTUP_MARGIN_S = 30

# The graceful shutdown (app/bot/client.py GuildBot.close, app/bot/rebalance.py leave):
# first in-flight commands get up to DRAIN_S (the bot's DRAIN_GRACE), then the pod hands its
# shards over one at a time, each a park (close resumably, save the session, release the lease)
# followed by the new owner's lease + RESUME, budgeted HANDOVER_S each. A pod holds at most
# ceil(SHARD_COUNT / replicas) shards (the live assignment is balanced within one shard), so a
# rolling update, node drain or scale-down by one needs DRAIN_S + that many x HANDOVER_S.
DRAIN_S = 20
HANDOVER_S = 2

OPS_PORT = 8080
APP_UID = 10001
SECRET_NAME = "guildbot-secrets"
SECRET_KEYS = {"DISCORD_TOKEN", "DATABASE_URL", "REDIS_URL", "DISCORD_CLIENT_SECRET"}
WEB_PORT = 8081
POD_INDEX_FIELD = "metadata.labels['apps.kubernetes.io/pod-index']"

# The metrics the dashboard must show (the bot's documented metrics, all prefixed guildbot_).
DASHBOARD_METRICS = {
    "guildbot_shard_up",
    "guildbot_shard_latency_seconds",
    "guildbot_shard_guilds",
    "guildbot_events_total",
    "guildbot_commands_total",
    "guildbot_command_duration_seconds",
    "guildbot_errors_total",
    "guildbot_identifies_total",
    "guildbot_session_starts_remaining",
    "guildbot_db_pool_size",
    "guildbot_db_pool_idle",
    "guildbot_db_pool_max",
    "guildbot_redis_up",
    "guildbot_redis_lock_wait_seconds",
    "guildbot_cases_opened_total",
    "guildbot_coins_moved_total",
    "guildbot_owned_shards",
    "guildbot_ready",
    "guildbot_rebalances_total",
    "guildbot_handovers_total",
    "guildbot_rebalance_convergence_seconds",
    "guildbot_rest_invalid_requests",
    "guildbot_rest_invalid_limit",
    "guildbot_rest_429_total",
    "guildbot_rest_proxy_429_total",
    "guildbot_rest_wait_seconds",
    "guildbot_rest_self_throttling",
    "guildbot_rest_local_limiting",
}


@cache
def exported_metrics() -> tuple[frozenset[str], frozenset[str]]:
    """(every metric name the bot exports, the histograms among them), from its registry.
    Counters are exported with a _total suffix; histograms as _bucket, _sum and _count."""
    from app.ops.metrics import REGISTRY

    names, histograms = set(), set()
    for family in REGISTRY.collect():
        names.add(f"{family.name}_total" if family.type == "counter" else family.name)
        if family.type == "histogram":
            histograms.add(family.name)
    return frozenset(names), frozenset(histograms)


# A Discord bot token: base64 user id, timestamp and HMAC separated by dots.
DISCORD_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{23,28}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}")


# ---- helpers -----------------------------------------------------------------------------------


def metrics_in(expr: str) -> set[str]:
    """The guildbot metric families a PromQL expression reads (histogram series folded in)."""
    _, histograms = exported_metrics()
    names = set()
    for name in re.findall(r"\bguildbot_[a-z0-9_]+", expr):
        for suffix in ("_bucket", "_sum", "_count"):
            base = name.removesuffix(suffix)
            if base != name and base in histograms:
                name = base
                break
        names.add(name)
    return names


def assert_known_metrics(expr: str, where: str) -> set[str]:
    known, histograms = exported_metrics()
    used = metrics_in(expr)
    assert used, f"{where}: expression reads no guildbot metric: {expr}"
    unknown = used - known
    assert not unknown, f"{where}: metrics the bot does not export {sorted(unknown)} in {expr}"
    for name in used & histograms:
        assert re.search(rf"{name}_(bucket|sum|count)\b", expr), (
            f"{where}: histogram {name} has no series of that bare name"
        )
    return used


@cache
def render(path: str) -> tuple[dict[str, Any], ...]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed: cannot render the kustomizations")
    result = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize {path} failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


@cache
def render_text(path: str) -> str:
    return yaml.safe_dump_all(render(path))


class Manifests:
    def __init__(self, path: str) -> None:
        self.path = path
        self.docs = render(path)

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [d for d in self.all(kind) if name is None or d["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.path}: expected one {kind} {name or ''}, found {len(found)}"
        return found[0]

    @property
    def statefulset(self) -> dict[str, Any]:
        return self.one("StatefulSet")

    @property
    def job(self) -> dict[str, Any]:
        return self.one("Job")

    @property
    def web(self) -> dict[str, Any]:
        """The web console's container."""
        containers = self.one("Deployment", "guildbot-web")["spec"]["template"]["spec"]
        assert len(containers["containers"]) == 1, "the console pod runs one container"
        return containers["containers"][0]

    @property
    def bot(self) -> dict[str, Any]:
        containers = self.statefulset["spec"]["template"]["spec"]["containers"]
        assert len(containers) == 1, "the bot pod runs one container"
        return containers[0]

    def config_of(self, container: dict[str, Any]) -> dict[str, str]:
        """The ConfigMap data a container's envFrom references (after kustomize's hashing)."""
        refs = [
            e["configMapRef"]["name"] for e in container.get("envFrom", []) if "configMapRef" in e
        ]
        assert len(refs) == 1, "the container takes its settings from exactly one ConfigMap"
        return self.one("ConfigMap", refs[0])["data"]

    def pod_specs(self) -> list[tuple[str, dict[str, Any]]]:
        return [
            (f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"])
            for d in self.docs
            if d["kind"] in {"StatefulSet", "Job", "Deployment", "DaemonSet", "CronJob"}
        ]


@pytest.fixture(params=KUSTOMIZATIONS)
def manifests(request: pytest.FixtureRequest) -> Manifests:
    return Manifests(request.param)


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def env_var(container: dict[str, Any], name: str) -> dict[str, Any]:
    found = [e for e in container.get("env", []) if e["name"] == name]
    assert len(found) == 1, f"container {container['name']}: env {name} set {len(found)} times"
    return found[0]


def probe_window_s(probe: dict[str, Any]) -> int:
    return probe.get("initialDelaySeconds", 0) + probe.get("failureThreshold", 3) * probe.get(
        "periodSeconds", 10
    )


def named_port(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    found = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == port]
    assert found, f"no container port named {port}"
    return found[0]


def largest_share(shard_count: int, pods: int) -> int:
    """Most shards one pod holds: ceil(SHARD_COUNT / pods), as the bot's own assignment says."""
    from app.coord.assignment import ranks

    share = math.ceil(shard_count / pods)
    assert max(Counter(ranks(shard_count, pods)).values()) == share, "the assignment is balanced"
    return share


def shard_settings(config: dict[str, str], where: str) -> tuple[int, float, float]:
    """(SHARD_COUNT, REBALANCE_GRACE_S, LEASE_TTL_S) of a bot's environment, checked to select the
    live assignment and to mean what the bot needs of them."""
    for name in FIXED_PLAN_SETTINGS:
        assert name not in config, f"{where}: {name} pins a fixed shard plan; replicas are the knob"
    count = config["SHARD_COUNT"]
    assert count.isdigit() and int(count) >= 1, f"{where}: SHARD_COUNT {count!r} is not a number"
    for name in ("REBALANCE_GRACE_S", "LEASE_TTL_S"):
        assert name in config, f"{where}: {name} is not set"
    grace, ttl = float(config["REBALANCE_GRACE_S"]), float(config["LEASE_TTL_S"])
    # When a vanished pod's shards are reassigned (after the grace), its leases must have expired
    # already, or the new owners would only wait for them.
    assert 0 < ttl < grace, f"{where}: LEASE_TTL_S {ttl} must be below REBALANCE_GRACE_S {grace}"
    return int(count), grace, ttl


def bot_settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The bot's Settings from exactly this environment (plus a Redis URL, which the Secret gives),
    nothing from the test process's environment or a .env file."""
    from app.config import Settings

    for field in Settings.model_fields:
        monkeypatch.delenv(field.upper(), raising=False)
        monkeypatch.delenv(field, raising=False)
    values: dict[str, Any] = {
        k.lower(): v for k, v in env.items() if k.lower() in Settings.model_fields
    }
    values.setdefault("redis_url", "redis://redis:6379/0")
    return Settings(_env_file=None, **values)


# ---- Kubernetes: shards ------------------------------------------------------------------------


def test_no_fixed_shard_plan_is_rendered(manifests: Manifests) -> None:
    text = render_text(manifests.path)
    for name in FIXED_PLAN_SETTINGS:
        assert name not in text, f"{manifests.path}: {name} in the rendered output"


def test_replicas_share_the_shards_live(
    manifests: Manifests, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.bot.client import live_rebalancing

    config = manifests.config_of(manifests.bot)
    replicas = manifests.statefulset["spec"]["replicas"]
    count, _, _ = shard_settings(config, manifests.path)
    # A replica beyond SHARD_COUNT would hold no shard (a hot spare): fine to scale to, not to ship.
    assert 1 <= replicas <= count, f"{manifests.path}: {replicas} replicas for {count} shards"
    assert (replicas, count) == EXPECTED_SHAPE[manifests.path]
    settings = bot_settings(config, monkeypatch)
    assert live_rebalancing(settings), f"{manifests.path}: the bot would not rebalance live"
    assert settings.lease_ttl_s < settings.rebalance_grace_s


def test_the_pods_follow_a_shard_count_file_that_starts_at_shard_count(
    manifests: Manifests,
) -> None:
    """SHARD_COUNT_FILE is guildbot-shards' SHARD_COUNT, mounted whole (not by subPath: edits
    reach the pods), unhashed (edits do not roll them), and equal to SHARD_COUNT as shipped: a
    file that differed would reshard a freshly deployed cluster at once."""
    config = manifests.config_of(manifests.bot)
    shards = manifests.one("ConfigMap", "guildbot-shards")
    assert shards["data"] == {"SHARD_COUNT": config["SHARD_COUNT"]}, manifests.path
    mounts = {m["name"]: m for m in manifests.bot["volumeMounts"]}
    volumes = manifests.statefulset["spec"]["template"]["spec"]["volumes"]
    volume = next(v for v in volumes if v.get("configMap", {}).get("name") == "guildbot-shards")
    mount = mounts[volume["name"]]
    assert "subPath" not in mount and mount.get("readOnly") is True
    assert config["SHARD_COUNT_FILE"] == f"{mount['mountPath']}/SHARD_COUNT"


def test_pod_index_comes_from_the_statefulset_ordinal(manifests: Manifests) -> None:
    pod_index = env_var(manifests.bot, "POD_INDEX")
    assert pod_index["valueFrom"]["fieldRef"]["fieldPath"] == POD_INDEX_FIELD


def test_settings_are_the_documented_ones(manifests: Manifests) -> None:
    config = manifests.config_of(manifests.bot)
    for key in (
        "SHARD_COUNT",
        "REBALANCE_GRACE_S",
        "LEASE_TTL_S",
        "LOG_LEVEL",
        "DB_POOL_MAX",
        "MESSAGE_CONTENT_INTENT",
    ):
        assert key in config, f"{manifests.path}: ConfigMap lacks {key}"
    assert "IDENTIFY_MAX_CONCURRENCY" not in config, "max_concurrency comes from Discord"
    assert config["LOG_LEVEL"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
    assert config.get("OPS_PORT", str(OPS_PORT)) == str(OPS_PORT)
    assert not SECRET_KEYS & set(config), "secrets must not be in the ConfigMap"


def test_dev_and_prod_differ_as_intended() -> None:
    dev, prod = Manifests("k8s/overlays/dev"), Manifests("k8s/overlays/prod")
    assert dev.config_of(dev.bot)["LOG_LEVEL"] == "DEBUG"
    dev_mem = dev.bot["resources"]["limits"]["memory"]
    prod_mem = prod.bot["resources"]["limits"]["memory"]
    assert dev_mem.endswith("Mi") and prod_mem.endswith("Gi"), (dev_mem, prod_mem)
    pod = prod.statefulset["spec"]["template"]["spec"]
    spread = pod.get("topologySpreadConstraints", [])
    anti = pod.get("affinity", {}).get("podAntiAffinity")
    assert anti or any(c["topologyKey"] == "kubernetes.io/hostname" for c in spread), (
        "prod spreads bot pods across nodes"
    )
    for constraint in spread:
        assert selects(
            constraint["labelSelector"]["matchLabels"],
            prod.statefulset["spec"]["template"]["metadata"]["labels"],
        )


# ---- Kubernetes: workload shape ----------------------------------------------------------------


def test_statefulset_is_parallel_behind_a_headless_service(manifests: Manifests) -> None:
    sts = manifests.statefulset["spec"]
    assert sts["podManagementPolicy"] == "Parallel"
    service = manifests.one("Service", sts["serviceName"])["spec"]
    assert service["clusterIP"] == "None"
    assert selects(service["selector"], sts["template"]["metadata"]["labels"])
    assert not selects(service["selector"], manifests.job["spec"]["template"]["metadata"]["labels"])
    ports = {p["name"]: p for p in service["ports"]}
    assert ports["http"]["port"] == OPS_PORT
    assert named_port(manifests.bot, ports["http"]["targetPort"]) == OPS_PORT
    assert selects(sts["selector"]["matchLabels"], sts["template"]["metadata"]["labels"])


def test_drain_budget_is_the_bots() -> None:
    from app.bot.client import DRAIN_GRACE

    assert DRAIN_GRACE == DRAIN_S, "the bot's drain changed: revisit the shutdown windows"


def test_graceful_shutdown_window(manifests: Manifests) -> None:
    replicas = manifests.statefulset["spec"]["replicas"]
    count = int(manifests.config_of(manifests.bot)["SHARD_COUNT"])
    share = largest_share(count, replicas)
    needed = DRAIN_S + share * HANDOVER_S
    grace = manifests.statefulset["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace >= needed, (
        f"{manifests.path}: terminationGracePeriodSeconds {grace} < {DRAIN_S} s drain + "
        f"{share} shards x {HANDOVER_S} s handover = {needed} s"
    )


def test_probes_hit_the_ops_endpoints(manifests: Manifests) -> None:
    expected = {"livenessProbe": "/livez", "readinessProbe": "/readyz", "startupProbe": "/startupz"}
    for container in (manifests.bot, manifests.web):
        for probe_name, path in expected.items():
            probe = container.get(probe_name)
            assert probe, f"{manifests.path}: no {probe_name} in {container['name']}"
            assert probe["httpGet"]["path"] == path, f"{probe_name} checks {probe['httpGet']}"
            assert named_port(container, probe["httpGet"]["port"]) == OPS_PORT


def test_web_console_runs_web_behind_its_service(manifests: Manifests) -> None:
    web = manifests.web
    assert web["command"] + web.get("args", []) == ["python", "-m", "app", "web"]
    config = manifests.config_of(web)
    assert config["WEB_HOST"] == "0.0.0.0" and config["WEB_URL"].startswith("https://")
    assert config["WEB_PORT"] == str(WEB_PORT) and float(config["WEB_ACCESS_TTL_S"]) <= 60
    assert not SECRET_KEYS & set(config), "secrets must not be in the ConfigMap"
    assert env_var(web, "DISCORD_CLIENT_SECRET")["valueFrom"]["secretKeyRef"]
    service = manifests.one("Service", "guildbot-web")["spec"]
    pod = manifests.one("Deployment", "guildbot-web")["spec"]["template"]["metadata"]
    assert selects(service["selector"], pod["labels"])
    assert [named_port(web, p["targetPort"]) for p in service["ports"]] == [WEB_PORT]
    assert pod["annotations"]["prometheus.io/port"] == str(OPS_PORT)


def test_startup_probe_waits_out_the_identify_queue(manifests: Manifests) -> None:
    shard_count = int(manifests.config_of(manifests.bot)["SHARD_COUNT"])
    needed = shard_count * IDENTIFY_INTERVAL_S + STARTUP_MARGIN_S
    window = probe_window_s(manifests.bot["startupProbe"])
    assert window >= needed, (
        f"{manifests.path}: startup probe allows {window} s, but {shard_count} shards x "
        f"{IDENTIFY_INTERVAL_S} s + {STARTUP_MARGIN_S} s margin = {needed} s"
    )


def test_prometheus_scrape_annotations(manifests: Manifests) -> None:
    annotations = manifests.statefulset["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(OPS_PORT)
    assert annotations["prometheus.io/path"] == "/metrics"


def test_every_container_has_requests_and_limits(manifests: Manifests) -> None:
    for where, pod in manifests.pod_specs():
        for container in pod["containers"]:
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    assert resource in resources.get(kind, {}), f"{where}: no {kind}.{resource}"


def test_pdb_allows_one_bot_pod_down(manifests: Manifests) -> None:
    pdb = manifests.one("PodDisruptionBudget")["spec"]
    assert pdb["maxUnavailable"] == 1
    assert selects(
        pdb["selector"]["matchLabels"],
        manifests.statefulset["spec"]["template"]["metadata"]["labels"],
    )
    # A PDB covering the Job's pod would block node drains (a Job cannot be scaled).
    assert not selects(
        pdb["selector"]["matchLabels"], manifests.job["spec"]["template"]["metadata"]["labels"]
    )


# ---- Kubernetes: security ----------------------------------------------------------------------


def test_pods_run_restricted(manifests: Manifests) -> None:
    specs = manifests.pod_specs()
    assert {where.split("/")[0] for where, _ in specs} == {"StatefulSet", "Job", "Deployment"}
    accounts = {sa["metadata"]["name"]: sa for sa in manifests.all("ServiceAccount")}
    for where, pod in specs:
        assert pod["automountServiceAccountToken"] is False, where
        account = pod.get("serviceAccountName")
        assert account in accounts, f"{where}: uses ServiceAccount {account!r}, not rendered"
        assert accounts[account]["automountServiceAccountToken"] is False
        pod_sc = pod.get("securityContext", {})
        assert pod_sc.get("runAsNonRoot") is True, where
        assert pod_sc.get("runAsUser") == APP_UID, where
        assert pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
        assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for container in pod["containers"] + pod.get("initContainers", []):
            sc = container.get("securityContext", {})
            name = f"{where}/{container['name']}"
            assert sc.get("allowPrivilegeEscalation") is False, name
            assert sc.get("readOnlyRootFilesystem") is True, name
            assert sc.get("privileged", False) is False, name
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], name
            assert not sc.get("capabilities", {}).get("add"), name
            assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, name
            assert sc.get("runAsUser", pod_sc.get("runAsUser")) == APP_UID, name
            seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {}))
            assert seccomp.get("type") == "RuntimeDefault", name
            # Read-only root: /tmp is the one writable place, an emptyDir.
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{name}: /tmp is not mounted"
            assert "emptyDir" in volumes[mounts["/tmp"]], f"{name}: /tmp is not an emptyDir"


def test_namespace_enforces_restricted_pod_security(manifests: Manifests) -> None:
    namespace = manifests.one("Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for doc in manifests.docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == namespace["metadata"]["name"], doc["metadata"]


def test_network_policies_allow_only_what_the_bot_needs(manifests: Manifests) -> None:
    policies = manifests.all("NetworkPolicy")
    pod_labels = manifests.statefulset["spec"]["template"]["metadata"]["labels"]
    bot = [p for p in policies if selects(p["spec"]["podSelector"]["matchLabels"], pod_labels)]
    assert len(bot) == 1, "one NetworkPolicy selects the bot pods"
    spec = bot[0]["spec"]
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    for rule in spec["ingress"]:
        assert [p["port"] for p in rule["ports"]] == [OPS_PORT]
        assert rule["from"], "ingress comes from named peers only"
        for peer in rule["from"]:
            assert peer["namespaceSelector"]["matchLabels"] == {
                "kubernetes.io/metadata.name": "monitoring"
            }
    egress_ports = {
        (p.get("protocol", "TCP"), p["port"]) for r in spec["egress"] for p in r["ports"]
    }
    assert egress_ports == {("UDP", 53), ("TCP", 53), ("TCP", 5432), ("TCP", 6379), ("TCP", 443)}
    job_labels = manifests.job["spec"]["template"]["metadata"]["labels"]
    migrate = [p for p in policies if selects(p["spec"]["podSelector"]["matchLabels"], job_labels)]
    assert len(migrate) == 1, "one NetworkPolicy selects the migration Job"
    assert not migrate[0]["spec"].get("ingress")
    ports = {p["port"] for r in migrate[0]["spec"]["egress"] for p in r["ports"]}
    assert ports == {53, 5432}
    web_pod = manifests.one("Deployment", "guildbot-web")["spec"]["template"]["metadata"]
    web = [
        p for p in policies if selects(p["spec"]["podSelector"]["matchLabels"], web_pod["labels"])
    ]
    assert len(web) == 1, "one NetworkPolicy selects the web console"
    ingress = {p["port"] for r in web[0]["spec"]["ingress"] for p in r["ports"]}
    assert ingress == {WEB_PORT, OPS_PORT}
    for rule in web[0]["spec"]["ingress"]:
        if any(p["port"] == OPS_PORT for p in rule["ports"]):
            assert rule["from"], "only Prometheus scrapes the console's ops port"


def test_no_secret_is_rendered_and_no_token_is_anywhere(manifests: Manifests) -> None:
    assert not manifests.all("Secret"), "secrets are created out of band, never rendered"
    assert not DISCORD_TOKEN_SHAPE.search(render_text(manifests.path))
    for where, pod in manifests.pod_specs():
        for container in pod["containers"]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == SECRET_NAME and ref["key"] in SECRET_KEYS, (where, ref)
                    assert ref["key"] == env["name"], where
                else:
                    assert env["name"] not in SECRET_KEYS, f"{where}: {env['name']} given inline"


def test_secret_example_is_documentation_only() -> None:
    kustomization = yaml.safe_load((ROOT / "k8s/base/kustomization.yaml").read_text())
    assert "secret.example.yaml" not in kustomization["resources"]
    example = yaml.safe_load((ROOT / "k8s/base/secret.example.yaml").read_text())
    assert example["kind"] == "Secret" and example["metadata"]["name"] == SECRET_NAME
    assert set(example["stringData"]) == SECRET_KEYS, (
        "the example documents every key the pods read"
    )
    for key, value in example["stringData"].items():
        assert "<" in value and ">" in value, f"{key} is not an obvious placeholder: {value!r}"
    for path in [*ROOT.glob("k8s/**/*"), *ROOT.glob("deploy/**/*"), *ROOT.glob("deploy/.env*")]:
        if path.is_file():
            assert not DISCORD_TOKEN_SHAPE.search(path.read_text()), f"token-like string in {path}"


# ---- Kubernetes: image and migrations ----------------------------------------------------------


def test_job_and_statefulset_run_the_same_pinned_image(manifests: Manifests) -> None:
    images = {
        (c["image"], c.get("imagePullPolicy"))
        for _, pod in manifests.pod_specs()
        for c in pod["containers"] + pod.get("initContainers", [])
    }
    assert len(images) == 1, f"{manifests.path}: several images {images}"
    image, policy = images.pop()
    assert policy == "IfNotPresent"
    assert "/" in image, f"image {image!r} was not set by the kustomization's images:"
    name, _, tag = (
        image.rpartition("@")[0].rpartition(":") if "@" in image else image.rpartition(":")
    )
    assert name and tag and tag != "latest", f"image {image!r} is not pinned to a tag"


def test_migration_job(manifests: Manifests) -> None:
    job = manifests.job
    spec = job["spec"]
    container = spec["template"]["spec"]["containers"][0]
    assert container["command"] + container.get("args", []) == ["python", "-m", "app", "migrate"]
    assert spec["backoffLimit"] >= 1
    assert spec["ttlSecondsAfterFinished"] > 0
    assert spec["template"]["spec"]["restartPolicy"] in {"Never", "OnFailure"}
    assert env_var(container, "DATABASE_URL")["valueFrom"]["secretKeyRef"]["key"] == "DATABASE_URL"
    names = {e["name"] for e in container.get("env", [])}
    assert not names & {"DISCORD_TOKEN", "REDIS_URL"}, "the migration needs only the database"
    bot = manifests.bot
    assert bot["command"] + bot.get("args", []) == ["python", "-m", "app", "run"]


def test_first_rollout_step_applies_everything_but_the_bot(manifests: Manifests) -> None:
    """k8s/README.md: `kubectl apply -l 'app.kubernetes.io/component!=bot'`, wait for the Job,
    then apply everything. The first step must bring all the Job needs and no bot pod."""
    first = {
        (d["kind"], d["metadata"]["name"])
        for d in manifests.docs
        if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") != "bot"
    }
    kinds = {kind for kind, _ in first}
    assert {"Namespace", "ServiceAccount", "ConfigMap", "Job", "NetworkPolicy"} <= kinds
    assert len(manifests.all("NetworkPolicy")) == len(
        [1 for kind, _ in first if kind == "NetworkPolicy"]
    ), "both NetworkPolicies are in place before the bot starts"
    assert "StatefulSet" not in kinds and "PodDisruptionBudget" not in kinds
    job_pod = manifests.job["spec"]["template"]["spec"]
    assert ("ServiceAccount", job_pod["serviceAccountName"]) in first
    for ref in job_pod["containers"][0].get("envFrom", []):
        assert ("ConfigMap", ref["configMapRef"]["name"]) in first


# ---- Compose -----------------------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "deploy/docker-compose.yml").read_text())


def compose_interpolate(value: str) -> str:
    """A value as Compose would pass it with deploy/.env unset: ${X:-default} is the default,
    ${X:?message} (required) a placeholder."""
    return re.sub(
        r"\$\{([A-Z_]+)(?::-([^}]*)|:\?[^}]*)?\}",
        lambda m: m.group(2) if m.group(2) is not None else f"<{m.group(1)}>",
        value,
    )


def test_compose_runs_two_bots_sharing_four_shards(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.bot.client import live_rebalancing
    from app.coord.assignment import assign
    from app.coord.membership import member_name

    services = compose()["services"]
    bots = {name: s for name, s in services.items() if name.startswith("bot-")}
    assert sorted(bots) == ["bot-0", "bot-1"]
    members = {}
    for name, bot in bots.items():
        env = {k: str(v) for k, v in bot["environment"].items()}
        count, _, _ = shard_settings(env, name)
        assert count == 4, name
        resolved = {k: compose_interpolate(v) for k, v in env.items()}
        assert live_rebalancing(bot_settings(resolved, monkeypatch)), f"{name}: not live"
        index = int(env["POD_INDEX"])
        assert f"bot-{index}" == name
        members[member_name(index, name)] = name
        assert bot["command"] == ["run"]
        assert bot["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert bot["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert bot["depends_on"]["redis"]["condition"] == "service_healthy"
        assert (
            env["DATABASE_URL"].startswith("postgres://")
            and "@postgres:5432/" in env["DATABASE_URL"]
        )
        assert env["REDIS_URL"].startswith("redis://redis:6379")
        assert env["DISCORD_TOKEN"].startswith("${DISCORD_TOKEN"), (
            "the token comes from deploy/.env"
        )
        assert bot["read_only"] is True and bot["user"].startswith(str(APP_UID))
    # What the bots compute from the live membership: 2 shards each, bot-0 keeps shard 0.
    plan = assign(4, sorted(members))
    owners = Counter(members[m] for m in plan.values())
    assert owners == {"bot-0": 2, "bot-1": 2}, owners
    assert members[plan[0]] == "bot-0"
    grace = bots["bot-0"]["stop_grace_period"]
    assert re.fullmatch(r"\d+s", grace), grace
    needed = DRAIN_S + largest_share(4, len(bots)) * HANDOVER_S
    assert int(grace[:-1]) >= needed, f"stop_grace_period {grace} < {needed} s"
    ports = [p for b in bots.values() for p in b.get("ports", [])]
    assert len(ports) == len(set(ports)) and all(p.startswith("127.0.0.1:") for p in ports)


def test_compose_dependencies_and_healthchecks() -> None:
    services = compose()["services"]
    assert services["postgres"]["image"].split(":")[1].startswith("15")
    assert services["redis"]["image"].split(":")[1].startswith("7")
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"], f"{name} has no healthcheck"
    migrate = services["migrate"]
    assert migrate["command"] == ["migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate.get("restart", "no") == "no"
    assert "DISCORD_TOKEN" not in migrate["environment"]
    images = {s["image"] for n, s in services.items() if n == "migrate" or n.startswith("bot-")}
    assert len(images) == 1, "migrate and the bots run the same image"
    assert migrate["build"]["context"] == ".." and (ROOT / migrate["build"]["dockerfile"]).is_file()


def test_compose_runs_the_web_console_on_request() -> None:
    services = compose()["services"]
    web = services["web"]
    assert web["command"] == ["web"] and web["profiles"] == ["web"]
    assert web["image"] == services["migrate"]["image"]
    assert web["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    env = {k: compose_interpolate(str(v)) for k, v in web["environment"].items()}
    assert env["WEB_HOST"] == "0.0.0.0" and env["REDIS_URL"].startswith("redis://redis:6379")
    assert env["WEB_URL"].endswith(":8090") and "127.0.0.1:8090:8081" in web["ports"]
    assert web["read_only"] is True and web["user"].startswith(str(APP_UID))


def test_compose_env_example_names_every_required_variable() -> None:
    text = (ROOT / "deploy/docker-compose.yml").read_text()
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    assert required >= {"DISCORD_TOKEN", "POSTGRES_PASSWORD"}
    example = {}
    for line in (ROOT / "deploy/.env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            example[key.strip()] = value.strip()
    assert required <= set(example), f"missing in .env.example: {required - set(example)}"
    for key in ("DISCORD_TOKEN", "POSTGRES_PASSWORD"):
        assert example[key].startswith("<") and example[key].endswith(">"), (
            f"{key} is not a placeholder"
        )


def test_the_nirn_proxy_example_serves_the_api_base_the_runbook_gives() -> None:
    objects = list(yaml.safe_load_all((ROOT / "k8s/examples/nirn-proxy.yaml").read_text()))
    by_kind = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    container = by_kind[("Deployment", "nirn-proxy")]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    service = by_kind[("Service", "nirn-proxy")]["spec"]["ports"][0]
    assert (service["port"], env["PORT"]) == (8080, "8080")
    assert env["CLUSTER_DNS"].startswith("nirn-proxy-cluster.")
    bot_egress = by_kind[("NetworkPolicy", "guildbot-bot-to-nirn-proxy")]["spec"]["egress"]
    assert bot_egress[0]["ports"] == [{"protocol": "TCP", "port": 8080}]
    assert all(o["metadata"]["namespace"] == "guildbot" for o in objects)
    runbook = (ROOT / "docs/operations.md").read_text()
    assert "DISCORD_API_BASE=http://nirn-proxy:8080/api/v10" in runbook


# ---- Prometheus alerts -------------------------------------------------------------------------

ALERTS = {
    # name: (runbook anchor, `for`)
    "ShardNotReady": ("shard-not-ready", "5m"),
    "ShardsUnbalanced": ("shards-unbalanced", "30m"),
    "IdentifyBudgetLow": ("identify-budget-low", None),
    "CommandErrorRateHigh": ("command-error-rate-high", "10m"),
    "DatabasePoolExhausted": ("database-pool-exhausted", "5m"),
    "RedisUnreachable": ("redis-unreachable", "2m"),
    "InvalidRequestsHigh": ("invalid-requests-high", "1m"),
    "RestSelfThrottling": ("rest-self-throttling", "1m"),
    "ShardsOutgrown": ("shards-outgrown", "30m"),
    "ReshardAbandoned": ("reshard-abandoned", None),
}


@cache
def alert_rules() -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load((ROOT / "deploy/prometheus-alerts.yml").read_text())
    rules = [r for group in doc["groups"] for r in group["rules"]]
    assert all("alert" in r for r in rules), "the file holds alerting rules only"
    return {r["alert"]: r for r in rules}


def test_alerts_are_complete() -> None:
    rules = alert_rules()
    assert set(ALERTS) <= set(rules), f"missing alerts: {set(ALERTS) - set(rules)}"
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        annotations = rule["annotations"]
        assert annotations["summary"].strip() and annotations["description"].strip(), name
        anchor, duration = ALERTS.get(name, (None, None))
        url = annotations["runbook_url"]
        assert url.startswith("docs/operations.md#"), f"{name}: runbook {url}"
        if anchor:
            assert url == f"docs/operations.md#{anchor}", f"{name}: runbook {url}"
        if duration:
            assert rule["for"] == duration, f"{name}: for {rule.get('for')}"
        assert_known_metrics(rule["expr"], f"alert {name}")


def test_alert_expressions_say_what_the_alerts_mean() -> None:
    rules = alert_rules()
    compact = {name: re.sub(r"\s+", "", rule["expr"]) for name, rule in rules.items()}
    assert "guildbot_shard_up==0" in compact["ShardNotReady"]
    # a shard handed over keeps a 0 series on its previous owner: READY elsewhere is fine
    assert "unlesson(shard)(guildbot_shard_up==1)" in compact["ShardNotReady"]
    assert "guildbot_owned_shards" in compact["ShardsUnbalanced"]
    assert compact["ShardsUnbalanced"].endswith(">1")
    assert "guildbot_session_starts_remaining" in compact["IdentifyBudgetLow"]
    assert compact["IdentifyBudgetLow"].endswith("<100")
    assert 'outcome="error"' in compact["CommandErrorRateHigh"]
    assert compact["CommandErrorRateHigh"].endswith(">0.05")
    assert "guildbot_db_pool_idle==0" in compact["DatabasePoolExhausted"]
    assert "guildbot_db_pool_size>=guildbot_db_pool_max" in compact["DatabasePoolExhausted"]
    assert "guildbot_redis_up==0" in compact["RedisUnreachable"]
    invalid = compact["InvalidRequestsHigh"]
    assert "/on(namespace)maxby(namespace)(guildbot_rest_invalid_limit)" in invalid
    assert invalid.endswith(">=0.5")
    assert compact["RestSelfThrottling"].endswith("(guildbot_rest_self_throttling)==1")


def find_promtool() -> str | None:
    found = shutil.which("promtool")
    if found:
        return found
    tools = os.environ.get("GUILDBOT_TOOLS_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "guildbot/deploy-tools"
    )
    cached = Path(tools) / "prometheus/usr/bin/promtool"
    return str(cached) if cached.is_file() else None


def test_alerts_pass_promtool_unit_tests() -> None:
    promtool = find_promtool()
    if promtool is None:
        pytest.skip("promtool not found (scripts/check-deploy.sh fetches it)")
    for args in (
        ["check", "rules", "prometheus-alerts.yml"],
        ["test", "rules", "prometheus-alerts.test.yml"],
    ):
        result = subprocess.run(
            [promtool, *args], cwd=ROOT / "deploy", capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, f"promtool {' '.join(args)}:\n{result.stdout}{result.stderr}"


# ---- Grafana dashboard -------------------------------------------------------------------------


@cache
def dashboard() -> dict[str, Any]:
    return json.loads((ROOT / "deploy/grafana-dashboard.json").read_text())


def all_panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for panel in panels:
        out.append(panel)
        out += all_panels(panel.get("panels", []))
    return out


def test_dashboard_model() -> None:
    dash = dashboard()
    assert 36 <= dash["schemaVersion"] <= 41
    assert dash["uid"] and dash["title"]
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = all_panels(dash["panels"])
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["w"] > 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        area = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & area, f"panel {panel['title']!r} overlaps another"
        cells |= area


def test_every_dashboard_query_reads_known_metrics() -> None:
    used: set[str] = set()
    panels = [p for p in all_panels(dashboard()["panels"]) if p["type"] != "row"]
    assert len(panels) >= 15
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            expr = target["expr"]
            used |= assert_known_metrics(expr, f"panel {panel['title']!r}")
            if "histogram_quantile" in expr:
                assert re.search(r"by \((le|[a-z_, ]*\ble\b[a-z_, ]*)\)", expr), expr
    missing = DASHBOARD_METRICS - used
    assert not missing, f"metrics without a panel: {sorted(missing)}"


def test_dashboard_covers_the_requested_views() -> None:
    titles = " | ".join(p["title"].lower() for p in all_panels(dashboard()["panels"]))
    for words in (
        "shards up",
        "not ready",
        "latency",
        "guilds",
        "events",
        "outcome",
        "p50",
        "p99",
        "errors",
        "identifies",
        "session starts",
        "pool",
        "redis",
        "lock wait",
        "cases",
        "coins",
        "owned shards",
        "handovers",
        "rebalances",
        "convergence",
        "invalid requests",
        "self-throttling",
    ):
        assert words in titles, f"no panel about {words!r}"


# ---- Image -------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text()
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_dockerfile_shape() -> None:
    instructions = dockerfile_instructions()
    froms = [rest for kw, rest in instructions if kw == "FROM"]
    assert len(froms) >= 2, "multi-stage: a builder and a runtime stage"
    assert froms[-1].split()[0] == "python:3.11-slim-bookworm"
    final = instructions[max(i for i, (kw, _) in enumerate(instructions) if kw == "FROM") :]
    users = [rest for kw, rest in final if kw == "USER"]
    assert users and users[-1].split(":")[0] == str(APP_UID)
    assert ("ENTRYPOINT", '["python", "-m", "app"]') in final
    assert ("CMD", '["run"]') in final
    assert not [kw for kw, _ in instructions if kw == "HEALTHCHECK"], "Kubernetes probes instead"
    env = " ".join(rest for kw, rest in final if kw == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "PYTHONUNBUFFERED=1" in env
    for kw, rest in instructions:
        if kw in {"ENV", "ARG"}:
            assert not re.search(r"TOKEN|PASSWORD|SECRET|DATABASE_URL|REDIS_URL", rest), rest


def test_image_finds_the_migrations_in_the_installed_package() -> None:
    """The migrations are package data of app/ (tests/packaging builds the wheel): the image
    copies no migrations of its own and leaves MIGRATIONS_DIR to the package's default."""
    instructions = dockerfile_instructions()
    copies = [rest.split() for kw, rest in instructions if kw == "COPY"]
    envs = " ".join(rest for kw, rest in instructions if kw == "ENV")
    assert "MIGRATIONS_DIR" not in envs
    assert ["app", "./app"] in copies
    assert list((ROOT / "app/db/migrations/models").glob("*.py")), "no migrations in the package"


def test_image_serves_its_probes_on_every_address() -> None:
    envs = " ".join(rest for kw, rest in dockerfile_instructions() if kw == "ENV")
    assert "OPS_HOST=0.0.0.0" in envs, "the kubelet probes the pod's address, not 127.0.0.1"


def test_dockerignore_allows_exactly_what_the_dockerfile_copies() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert lines[0] == "*", ".dockerignore is an allow-list"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = set()
    for kw, rest in dockerfile_instructions():
        if kw == "COPY" and "--from=" not in rest:
            copied |= {src.removeprefix("./").rstrip("/") for src in rest.split()[:-1]}
    assert copied == allowed, f"COPY sources {sorted(copied)} vs allowed {sorted(allowed)}"
    for secret_or_bulk in (".git", ".env", "tests", "data", ".venv", "bench", "docs"):
        assert secret_or_bulk not in allowed
    for source in copied:
        assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which does not exist"
