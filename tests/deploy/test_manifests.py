"""deploy/'s Kubernetes manifests: valid against Kubernetes' own schemas (strict), and wired as the README says."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from .manifests import (
    CENTRAL,
    DEPLOY,
    DRAIN,
    SIDECAR,
    WORKLOAD_KINDS,
    K8sObject,
    container_env,
    kubernetes_objects,
    objects_in,
    pod_labels,
    pod_spec,
    prestop_seconds,
    quantity,
    relay_config,
    relay_container,
    selects,
    with_references,
    workloads,
)

# The oldest version the manifests are written for (native sidecars are 1.29+; the PDB's and the StatefulSet's
# newer fields are on by default from 1.27), and the newest the validator bundles.
K8S_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
OBJECTS = kubernetes_objects()


@pytest.fixture(scope="module")
def central() -> dict[tuple[str, str], dict[str, Any]]:
    """The central tier's objects by (kind, name)."""
    return objects_in(CENTRAL)


def test_every_manifest_file_has_objects() -> None:
    """Each kubernetes*.yaml under deploy/ holds Kubernetes objects, so none is skipped by accident."""
    files = {o.path for o in OBJECTS}
    assert files == set(DEPLOY.glob("kubernetes*.yaml")) == {CENTRAL, SIDECAR, DRAIN}
    kinds = sorted(o.kind for o in OBJECTS if o.path == CENTRAL)
    assert kinds == sorted(
        ["Secret", "ConfigMap", "Service", "Service", "StatefulSet", "PodDisruptionBudget", "HorizontalPodAutoscaler"]
    )


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("obj", OBJECTS, ids=lambda o: o.id)
def test_object_is_valid_for_kubernetes(obj: K8sObject, version: str) -> None:
    """The object validates against the Kubernetes schema of that version, unknown fields being errors."""
    try:
        kubernetes_validate.validate(obj.body, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path)
        pytest.fail(f"{obj.id} is invalid for Kubernetes {exc.version}: {where}: {exc.message}")
    except kubernetes_validate.SchemaNotFoundError as exc:
        pytest.fail(f"{obj.id}: {exc.message}")


def test_strict_validation_rejects_a_misspelt_field(central: dict[tuple[str, str], dict[str, Any]]) -> None:
    """The validator is strict: a typo in a probe is an error, not a silently ignored field."""
    body = copy.deepcopy(central[("StatefulSet", "relay")])
    probe = relay_container(body)["readinessProbe"]
    probe["failureTreshold"] = probe.pop("failureThreshold")
    with pytest.raises(kubernetes_validate.ValidationError, match="failureTreshold"):
        kubernetes_validate.validate(body, K8S_VERSIONS[0], strict=True)


@pytest.mark.parametrize("path", [CENTRAL, SIDECAR, DRAIN], ids=lambda p: p.name)
def test_relay_config_loads_as_the_container_would(path: Path) -> None:
    """Each workload's ConfigMap relay.yml passes the relay's own config check with the container's environment."""
    for workload in workloads(path):
        config = relay_config(workload, with_references(path))
        assert config.listen.host == "0.0.0.0"
        assert config.spool.backend == "sqlite"


def test_statefulset_keeps_each_spool_on_its_own_claim(central: dict[tuple[str, str], dict[str, Any]]) -> None:
    """volumeClaimTemplates hold the spool: spool.path is on the claim's mount, and the claim outsizes max_disk."""
    sts = central[("StatefulSet", "relay")]
    config = relay_config(sts, central)
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in relay_container(sts)["volumeMounts"]}
    assert claim["metadata"]["name"] not in {v["name"] for v in pod_spec(sts)["volumes"]}
    mount = mounts[claim["metadata"]["name"]].rstrip("/")
    assert config.spool.path == mount or config.spool.path.startswith(mount + "/"), (config.spool.path, mount)
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    storage = quantity(claim["spec"]["resources"]["requests"]["storage"])
    assert storage >= config.spool.max_disk + 256 * 1024**2, "leave room for the WAL and the reserve"
    # Kept on scale-down: what a removed replica could not send goes out when its ordinal returns.
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"] == "Retain"
    assert pod_spec(sts)["securityContext"]["fsGroup"] == relay_container(sts)["securityContext"]["runAsGroup"]


def test_readiness_follows_the_spool_and_liveness_does_not(central: dict[tuple[str, str], dict[str, Any]]) -> None:
    """readinessProbe is /readyz (503 while the spool is full or lost); liveness is /healthz, so a full spool
    takes the replica out of the Service without restarting it."""
    sts = central[("StatefulSet", "relay")]
    container = relay_container(sts)
    config = relay_config(sts, central)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz"), ("startupProbe", "/healthz")):
        get = container[probe]["httpGet"]
        assert get["path"] == path, probe
        assert ports.get(get["port"], get["port"]) == config.listen.port, probe


@pytest.mark.parametrize("path", [CENTRAL, SIDECAR, DRAIN], ids=lambda p: p.name)
def test_grace_period_outlasts_the_drain(path: Path) -> None:
    """terminationGracePeriodSeconds > preStop sleep + shutdown_timeout, for every workload running a relay."""
    for workload in workloads(path):
        config = relay_config(workload, with_references(path))
        grace = pod_spec(workload)["terminationGracePeriodSeconds"]
        needed = prestop_seconds(relay_container(workload)) + config.shutdown_timeout
        assert grace > needed, f"{workload['metadata']['name']}: grace {grace}s <= preStop + shutdown_timeout {needed}s"


def test_disruption_budget_selects_the_statefulsets_pods_only(central: dict[tuple[str, str], dict[str, Any]]) -> None:
    """The PDB (and both Services) select exactly the StatefulSet's pods: not the sidecar apps, not a drain pod."""
    sts = central[("StatefulSet", "relay")]
    labels = pod_labels(sts)
    assert sts["spec"]["selector"]["matchLabels"].items() <= labels.items()
    pdb = central[("PodDisruptionBudget", "relay")]
    assert pdb["spec"]["selector"]["matchLabels"] == sts["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["maxUnavailable"] == 1
    selectors = [pdb["spec"]["selector"]["matchLabels"]]
    selectors += [body["spec"]["selector"] for (kind, _), body in central.items() if kind == "Service"]
    others = [o.body for o in OBJECTS if o.kind in WORKLOAD_KINDS and o.body is not sts and o.path != CENTRAL]
    assert others, "the sidecar Deployment and the drain pod are checked too"
    for selector in selectors:
        assert selects(selector, labels)
        for other in others:
            assert not selects(selector, pod_labels(other)), (selector, other["metadata"]["name"])


def test_services_headless_for_the_statefulset_and_clusterip_for_clients(
    central: dict[tuple[str, str], dict[str, Any]],
) -> None:
    """serviceName is a headless Service; clients get a ClusterIP Service on the relay's port."""
    sts = central[("StatefulSet", "relay")]
    config = relay_config(sts, central)
    headless = central[("Service", sts["spec"]["serviceName"])]
    assert headless["spec"]["clusterIP"] == "None"
    clients = central[("Service", "relay")]
    assert clients["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert clients["spec"].get("clusterIP") != "None"
    port_names = {p["name"] for p in relay_container(sts)["ports"]}
    for service in (headless, clients):
        (port,) = service["spec"]["ports"]
        assert port["port"] == config.listen.port
        assert port["targetPort"] in port_names


def test_autoscaler_targets_the_statefulset_on_cpu(central: dict[tuple[str, str], dict[str, Any]]) -> None:
    """The HPA scales the StatefulSet on CPU (which needs a CPU request), and scales down one replica at a time."""
    sts = central[("StatefulSet", "relay")]
    hpa = central[("HorizontalPodAutoscaler", "relay")]
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "relay"}
    assert sts["metadata"]["name"] == "relay"
    (metric,) = spec["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    assert quantity(relay_container(sts)["resources"]["requests"]["cpu"]) > 0
    assert spec["minReplicas"] >= 2, "with maxUnavailable 1, one replica keeps serving during a disruption"
    (policy,) = spec["behavior"]["scaleDown"]["policies"]
    assert (policy["type"], policy["value"]) == ("Pods", 1)


def test_quotas_are_shared_through_redis_by_default(central: dict[tuple[str, str], dict[str, Any]]) -> None:
    """The central tier counts quotas in Redis; RELAY_RATELIMIT_BACKEND=memory switches to per-replica counts."""
    sts = central[("StatefulSet", "relay")]
    config = relay_config(sts, central)
    assert config.ratelimit.backend == "redis"
    assert config.ratelimit.url == "redis://redis:6379/0"
    assert config.ratelimit.password == "change-me"
    assert any(project.quotas for project in config.projects)
    env = {v["name"]: v for v in relay_container(sts)["env"]}
    env["RELAY_RATELIMIT_BACKEND"] = {"name": "RELAY_RATELIMIT_BACKEND", "value": "memory"}
    patched = copy.deepcopy(sts)
    relay_container(patched)["env"] = list(env.values())
    assert relay_config(patched, central).ratelimit.backend == "memory"


def test_relay_containers_are_locked_down_and_scraped() -> None:
    """Every relay container: non-root, read-only root with a writable /tmp, no privilege, resources set;
    every long-running relay pod carries the Prometheus annotations for its metrics port."""
    for obj in OBJECTS:
        if obj.kind not in WORKLOAD_KINDS:
            continue
        container = relay_container(obj.body)
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] != 0, obj.id
        assert context["readOnlyRootFilesystem"] is True, obj.id
        assert context["allowPrivilegeEscalation"] is False, obj.id
        assert context["capabilities"]["drop"] == ["ALL"], obj.id
        seccomp = context.get("seccompProfile") or pod_spec(obj.body)["securityContext"]["seccompProfile"]
        assert seccomp["type"] == "RuntimeDefault", obj.id
        assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}, obj.id
        assert "memory" in container["resources"]["limits"], obj.id
        assert "memory" in container["resources"]["requests"], obj.id
        if obj.kind == "Pod":
            continue
        annotations = obj.body["spec"]["template"]["metadata"]["annotations"]
        port = next(p["containerPort"] for p in container["ports"])
        assert annotations["prometheus.io/scrape"] == "true", obj.id
        assert annotations["prometheus.io/port"] == str(port), obj.id
        assert annotations["prometheus.io/path"] == "/metrics", obj.id


def test_sidecar_is_a_native_sidecar() -> None:
    """The sidecar pattern still runs relay as an init container with restartPolicy Always, ready before the app."""
    objects = objects_in(SIDECAR)
    app = objects[("Deployment", "my-app")]
    (relay,) = pod_spec(app)["initContainers"]
    assert relay["name"] == "relay" and relay["restartPolicy"] == "Always"
    assert relay["startupProbe"]["httpGet"]["path"] == "/readyz"
    assert relay["readinessProbe"]["httpGet"]["path"] == "/readyz"
    config = relay_config(app, objects)
    dsn = container_env(pod_spec(app)["containers"][0], {})["SENTRY_DSN"]
    assert dsn.endswith(f"@127.0.0.1:{config.listen.port}/{config.projects[0].id}")
    assert config.projects[0].keys[0] in dsn


def test_drain_pod_mounts_a_replicas_claim_and_takes_no_traffic(
    central: dict[tuple[str, str], dict[str, Any]],
) -> None:
    """The drain pod mounts spool-relay-<n> where the replica mounts it, with the same config, and no Service
    or the PDB selects it."""
    (pod,) = objects_in(DRAIN).values()
    sts = central[("StatefulSet", "relay")]
    (template,) = sts["spec"]["volumeClaimTemplates"]
    volumes = {v["name"]: v for v in pod_spec(pod)["volumes"]}
    claims = [v for v in volumes.values() if "persistentVolumeClaim" in v]
    (claim,) = claims
    prefix = f"{template['metadata']['name']}-{sts['metadata']['name']}-"
    assert claim["persistentVolumeClaim"]["claimName"].removeprefix(prefix).isdigit()
    mounts = {m["name"]: m["mountPath"] for m in relay_container(pod)["volumeMounts"]}
    sts_mounts = {m["name"]: m["mountPath"] for m in relay_container(sts)["volumeMounts"]}
    assert mounts[claim["name"]] == sts_mounts[template["metadata"]["name"]]
    objects = with_references(DRAIN)
    assert relay_config(pod, objects).spool == relay_config(sts, central).spool
    assert relay_config(pod, objects).shutdown_timeout == relay_config(sts, central).shutdown_timeout
