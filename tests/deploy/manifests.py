"""Reading deploy/: the Kubernetes objects in its YAML files, and the relay config each workload runs with."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from relay.config import Config, parse_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CENTRAL = DEPLOY / "kubernetes-central.yaml"
SIDECAR = DEPLOY / "kubernetes.yaml"
DRAIN = DEPLOY / "kubernetes-central-drain.yaml"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Pod")

_QUANTITY = re.compile(r"^([0-9.]+)([KMGTPE]i?|m)?$")
_SUFFIXES = {
    "": 1,
    "m": 1e-3,
    **{s: 1000**n for n, s in enumerate("KMGTPE", 1)},
    **{f"{s}i": 1024**n for n, s in enumerate("KMGTPE", 1)},
}


@dataclass(frozen=True, slots=True)
class K8sObject:
    """One Kubernetes object: the file it is in, its position there, and its body."""

    path: Path
    index: int
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        """`kind`, such as StatefulSet."""
        return str(self.body["kind"])

    @property
    def name(self) -> str:
        """`metadata.name`."""
        return str(self.body["metadata"]["name"])

    @property
    def id(self) -> str:
        """`file#index:Kind/name`, for test ids and messages."""
        return f"{self.path.name}#{self.index}:{self.kind}/{self.name}"


def kubernetes_objects(root: Path = DEPLOY) -> list[K8sObject]:
    """Every YAML document under `root` that is a Kubernetes object (has apiVersion and kind), in file order."""
    found = []
    for path in sorted([*root.rglob("*.yaml"), *root.rglob("*.yml")]):
        for index, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if isinstance(doc, dict) and "apiVersion" in doc and "kind" in doc:
                found.append(K8sObject(path, index, doc))
    return found


def objects_in(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """The Kubernetes objects of one file, by (kind, name)."""
    return {(o.kind, o.name): o.body for o in kubernetes_objects(path.parent) if o.path == path}


def with_references(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """The objects of one file plus those it refers to elsewhere (the drain pod uses the central tier's ConfigMap
    and Secret), by (kind, name)."""
    own = objects_in(path)
    return {**objects_in(CENTRAL), **own} if path == DRAIN else own


def workloads(path: Path) -> list[dict[str, Any]]:
    """The Pods, Deployments and StatefulSets of one file."""
    return [body for (kind, _), body in objects_in(path).items() if kind in WORKLOAD_KINDS]


def quantity(value: str | int) -> float:
    """A Kubernetes quantity (`5Gi`, `500m`, `64Mi`) as a number of bytes or cores."""
    match = _QUANTITY.match(str(value))
    assert match, f"not a quantity: {value!r}"
    return float(match.group(1)) * _SUFFIXES[match.group(2) or ""]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    """The pod spec of a Pod, Deployment or StatefulSet."""
    return workload["spec"] if workload["kind"] == "Pod" else workload["spec"]["template"]["spec"]


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    """The labels its pods carry."""
    meta = workload["metadata"] if workload["kind"] == "Pod" else workload["spec"]["template"]["metadata"]
    return dict(meta.get("labels", {}))


def relay_container(workload: dict[str, Any]) -> dict[str, Any]:
    """The container (or native sidecar) named relay."""
    spec = pod_spec(workload)
    for container in [*spec.get("initContainers", []), *spec["containers"]]:
        if container["name"] == "relay":
            return container
    raise AssertionError(f"no relay container in {workload['kind']}/{workload['metadata']['name']}")


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """Whether a matchLabels-style selector selects pods with these labels."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def container_env(container: dict[str, Any], secrets: dict[str, dict[str, str]]) -> dict[str, str]:
    """The container's environment: literal values, and secret keys from the Secrets (`stringData`) given."""
    env: dict[str, str] = {}
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = str(var["value"])
            continue
        ref = var["valueFrom"]["secretKeyRef"]
        value = secrets.get(ref["name"], {}).get(ref["key"])
        assert value is not None or ref.get("optional"), f"{var['name']}: no secret {ref['name']}/{ref['key']}"
        if value is not None:
            env[var["name"]] = value
    return env


def mounted_config_map(workload: dict[str, Any], objects: dict[tuple[str, str], dict[str, Any]]) -> tuple[str, str]:
    """The relay config the workload runs with: (file name, text) from the ConfigMap mounted at RELAY_CONFIG."""
    container = relay_container(workload)
    config_path = next(v["value"] for v in container["env"] if v["name"] == "RELAY_CONFIG")
    directory, _, file_name = config_path.rpartition("/")
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == directory)
    volume = next(v for v in pod_spec(workload)["volumes"] if v["name"] == mount["name"])
    config_map = objects[("ConfigMap", volume["configMap"]["name"])]
    return file_name, config_map["data"][file_name]


def relay_config(workload: dict[str, Any], objects: dict[tuple[str, str], dict[str, Any]]) -> Config:
    """The relay's config as the workload's container would load it: its ConfigMap, its environment."""
    secrets = {name: body.get("stringData", {}) for (kind, name), body in objects.items() if kind == "Secret"}
    file_name, text = mounted_config_map(workload, objects)
    env = container_env(relay_container(workload), secrets)
    return parse_config(text, f"{workload['metadata']['name']}:{file_name}", env)


def prestop_seconds(container: dict[str, Any]) -> float:
    """How long the container's preStop hook waits before SIGTERM (0 without one)."""
    pre_stop = container.get("lifecycle", {}).get("preStop")
    if pre_stop is None:
        return 0.0
    if "sleep" in pre_stop:
        return float(pre_stop["sleep"]["seconds"])
    command = pre_stop["exec"]["command"]
    assert command[0] == "sleep" and len(command) == 2, f"a preStop hook whose length is unknown: {command}"
    return float(command[1])
