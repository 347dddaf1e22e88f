"""Synthetic, realistic Kubernetes objects rendered from byte templates.

Building 100,000 pods as Python dicts and serialising each one costs tens of seconds; a pod
is instead described once as a dict whose varying fields are ``@@slot@@`` markers, encoded
once, and turned into a bytes %-format. Rendering a pod is then one ``fmt % values`` call
(about a microsecond for 4.5 KB), so start-up stays well under the benchmark's budget.

Slot values are plain ASCII without quotes or backslashes, so they need no JSON escaping,
also inside the escaped ``last-applied-configuration`` annotation.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

__all__ = ["Template", "PodFactory", "ConfigMapFactory", "Shape", "SHAPES"]

_MARKER = re.compile(rb'"@@#(\w+)@@"|@@(\w+)@@')


class Template:
    """A JSON document with named slots, rendered by one bytes %-format.

    ``"@@name@@"`` is a string slot (the value is placed inside the quotes), ``"@@#name@@"``
    (quotes included) a numeric slot.
    """

    def __init__(self, doc: dict[str, Any]) -> None:
        raw = msgspec.json.encode(doc)
        self.slots: set[str] = set()

        def sub(m: re.Match[bytes]) -> bytes:
            name = m.group(1) or m.group(2)
            self.slots.add(name.decode())
            return b"%(" + name + b")s"

        self._fmt: bytes = _MARKER.sub(sub, raw.replace(b"%", b"%%"))

    def render(self, values: dict[bytes, bytes]) -> bytes:
        return self._fmt % values


@dataclass(frozen=True)
class Shape:
    """One kind of workload: its containers decide most of a pod's bytes."""

    app: str
    containers: tuple[tuple[str, str, int], ...]  # (name, image, port)
    env: int  # env vars per container
    volumes: int


SHAPES: tuple[Shape, ...] = (
    Shape("web", (("nginx", "registry.example.com/web/nginx:1.27.3", 8080),
                  ("envoy", "registry.example.com/mesh/envoy:v1.31.2", 15001)), 2, 2),
    Shape("api", (("api", "registry.example.com/payments/api:2026.11.4", 8443),), 5, 2),
    Shape("worker", (("worker", "registry.example.com/jobs/worker:3.8.0", 9090),), 6, 2),
    Shape("cache", (("redis", "registry.example.com/cache/redis:7.4.1", 6379),
                    ("exporter", "registry.example.com/obs/redis-exporter:1.66.0", 9121)), 1, 1),
    Shape("gateway", (("gateway", "registry.example.com/edge/gateway:5.2.1", 8000),), 4, 3),
)

NAMESPACES: tuple[str, ...] = (
    "default", "kube-system", "payments", "checkout", "search", "catalog", "identity",
    "billing", "shipping", "analytics", "ml-serving", "monitoring",
)


def _rand_suffix(rng: random.Random, n: int = 5) -> str:
    return "".join(rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(n))


def _uid(rng: random.Random) -> str:
    h = "%032x" % rng.getrandbits(128)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def _pod_doc(shape: Shape) -> dict[str, Any]:
    containers: list[dict[str, Any]] = []
    statuses: list[dict[str, Any]] = []
    applied_containers: list[dict[str, Any]] = []
    for ci, (cname, image, port) in enumerate(shape.containers):
        # Sidecars (second containers) carry fewer settings, like real meshes and exporters.
        env: list[dict[str, Any]] = [
            {"name": f"{shape.app.upper()}_SETTING_{i}", "value": f"value-{i}"}
            for i in range(shape.env if ci == 0 else 0)]
        env.append({"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1",
                                                                   "fieldPath": "metadata.name"}}})
        mounts: list[dict[str, Any]] = [{"name": f"data-{i}", "mountPath": f"/var/lib/{cname}/{i}"}
                  for i in range(shape.volumes if ci == 0 else 0)]
        mounts.append({"name": "kube-api-access", "mountPath":
                       "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": True})
        probe = {"readinessProbe": {"httpGet": {"path": "/healthz", "port": port},
                                    "periodSeconds": 10, "failureThreshold": 3}} if ci == 0 else {}
        containers.append({
            "name": cname, "image": image, "imagePullPolicy": "IfNotPresent",
            "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
            "env": env,
            "resources": {"requests": {"cpu": "250m", "memory": "256Mi"},
                          "limits": {"cpu": "1", "memory": "512Mi"}},
            "volumeMounts": mounts,
            **probe,
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
        })
        applied_containers.append({"name": cname, "image": image,
                                   "ports": [{"containerPort": port}]})
        statuses.append({
            "name": cname, "ready": True, "started": True, "image": image,
            "imageID": f"{image.split(':')[0]}@sha256:@@digest@@",
            "containerID": "containerd://@@cid@@",
            "restartCount": "@@#restarts@@",
            "state": {"running": {"startedAt": "@@started@@"}},
            "lastState": {},
        })
    applied = msgspec.json.encode({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "@@deploy@@", "namespace": "@@namespace@@",
                     "labels": {"app": "@@app@@"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "@@app@@"}},
                 "template": {"spec": {"containers": applied_containers}}},
    }).decode()
    conds = ["Initialized", "Ready", "ContainersReady", "PodScheduled"]
    return {
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {
            "name": "@@name@@", "generateName": "@@rs@@-", "namespace": "@@namespace@@",
            "uid": "@@uid@@", "resourceVersion": "@@rv@@",
            "creationTimestamp": "@@created@@",
            "labels": {"app": "@@app@@", "pod-template-hash": "@@hash@@",
                       "tier": shape.app, "team": "@@namespace@@"},
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": applied + "\n",
                "prometheus.io/scrape": "true", "prometheus.io/port": "9090",
                "kfast.dev/revision": "@@revision@@",
            },
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "@@rs@@",
                                 "uid": "@@rsuid@@", "controller": True,
                                 "blockOwnerDeletion": True}],
            "managedFields": [
                {"manager": "kube-controller-manager", "operation": "Update",
                 "apiVersion": "v1", "time": "@@created@@", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:metadata": {"f:generateName": {}, "f:labels": {
                     ".": {}, "f:app": {}, "f:pod-template-hash": {}},
                     "f:ownerReferences": {".": {}, 'k:{"uid":"@@rsuid@@"}': {}}},
                     "f:spec": {"f:containers": {f'k:{{"name":"{c[0]}"}}': {
                         ".": {}, "f:image": {}, "f:name": {}, "f:resources": {}}
                         for c in shape.containers}}}},
                {"manager": "kubelet", "operation": "Update", "apiVersion": "v1",
                 "time": "@@updated@@", "fieldsType": "FieldsV1", "subresource": "status",
                 "fieldsV1": {"f:status": {"f:conditions": {
                     f'k:{{"type":"{c}"}}': {".": {}, "f:lastProbeTime": {}, "f:status": {},
                                              "f:type": {}} for c in conds},
                     "f:containerStatuses": {}, "f:hostIP": {}, "f:phase": {},
                     "f:podIP": {}, "f:startTime": {}}}},
            ],
        },
        "spec": {
            "volumes": [{"name": f"data-{i}", "emptyDir": {}} for i in range(shape.volumes)]
            + [{"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}]}}],
            "containers": containers,
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst", "serviceAccountName": "default",
            "nodeName": "@@node@@", "schedulerName": "default-scheduler",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                             "effect": "NoExecute", "tolerationSeconds": 300}],
            "priority": 0, "enableServiceLinks": True, "preemptionPolicy": "PreemptLowerPriority",
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": c, "status": "True", "lastProbeTime": None,
                            "lastTransitionTime": "@@updated@@"} for c in conds],
            "hostIP": "@@hostip@@", "hostIPs": [{"ip": "@@hostip@@"}],
            "podIP": "@@podip@@", "podIPs": [{"ip": "@@podip@@"}],
            "startTime": "@@created@@",
            "containerStatuses": statuses,
            "qosClass": "Burstable",
        },
    }


def _ts(seconds: int) -> str:
    # A fixed epoch keeps output deterministic (2026-11-01T00:00:00Z plus seconds).
    d, s = divmod(seconds, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"2026-11-{1 + d % 28:02d}T{h:02d}:{m:02d}:{s:02d}Z"


@dataclass
class PodSeed:
    """The varying part of one pod; ``values`` renders it, ``revision`` bumps on update."""

    namespace: str
    name: str
    shape: int
    values: dict[bytes, bytes]
    labels: dict[str, str]
    revision: int = 0


@dataclass
class PodFactory:
    """Deterministic pods spread over namespaces, ReplicaSets and nodes, given a seed."""

    seed: int = 1
    nodes: int = 200
    namespaces: tuple[str, ...] = NAMESPACES
    _rng: random.Random = field(init=False)
    _templates: list[Template] = field(init=False)
    _deploys: list[tuple[str, str, int, str, str, str]] = field(init=False)
    _count: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._templates = [Template(_pod_doc(s)) for s in SHAPES]
        self._deploys = []
        for ns in self.namespaces:
            for i in range(12):
                shape = self._rng.randrange(len(SHAPES))
                app = f"{SHAPES[shape].app}-{i:02d}"
                h = "%010x" % self._rng.getrandbits(40)
                rs = f"{app}-{h[:9]}"
                self._deploys.append((ns, app, shape, h[:9], rs, _uid(self._rng)))

    def new(self) -> PodSeed:
        """A fresh pod (also used for creates during churn)."""
        rng = self._rng
        ns, app, shape, h, rs, rsuid = self._deploys[rng.randrange(len(self._deploys))]
        self._count += 1
        name = f"{rs}-{_rand_suffix(rng)}{self._count:x}"
        node = rng.randrange(self.nodes)
        t = 86400 + self._count
        values = {
            b"name": name.encode(), b"namespace": ns.encode(), b"uid": _uid(rng).encode(),
            b"rv": b"0", b"created": _ts(t).encode(), b"updated": _ts(t + 30).encode(),
            b"started": _ts(t + 12).encode(), b"app": app.encode(), b"hash": h.encode(),
            b"rs": rs.encode(), b"rsuid": rsuid.encode(), b"deploy": app.encode(),
            b"node": f"ip-10-{node // 250}-{node % 250}-{7 + node % 11}.ec2.internal".encode(),
            b"hostip": f"10.{node // 250}.{node % 250}.{7 + node % 11}".encode(),
            b"podip": f"10.{100 + node // 250}.{node % 250}.{rng.randrange(2, 254)}".encode(),
            b"cid": ("%064x" % rng.getrandbits(256)).encode(),
            b"digest": ("%064x" % rng.getrandbits(256)).encode(),
            b"restarts": b"0", b"revision": b"0",
        }
        labels = {"app": app, "pod-template-hash": h, "tier": SHAPES[shape].app, "team": ns}
        return PodSeed(ns, name, shape, values, labels)

    def touch(self, pod: PodSeed) -> None:
        """What a kubelet status update changes: times, restart count, an annotation."""
        pod.revision += 1
        v = pod.values
        v[b"revision"] = str(pod.revision).encode()
        v[b"updated"] = _ts(172800 + self._count + pod.revision).encode()
        if pod.revision % 7 == 0:
            v[b"restarts"] = str(int(v[b"restarts"]) + 1).encode()
            v[b"started"] = v[b"updated"]

    def render(self, pod: PodSeed, rv: int) -> bytes:
        pod.values[b"rv"] = str(rv).encode()
        return self._templates[pod.shape].render(pod.values)


@dataclass
class ConfigMapSeed:
    namespace: str
    name: str
    values: dict[bytes, bytes]
    labels: dict[str, str]
    revision: int = 0


_CM_DOC: dict[str, Any] = {
    "kind": "ConfigMap", "apiVersion": "v1",
    "metadata": {
        "name": "@@name@@", "namespace": "@@namespace@@", "uid": "@@uid@@",
        "resourceVersion": "@@rv@@", "creationTimestamp": "@@created@@",
        "labels": {"app": "@@app@@", "app.kubernetes.io/managed-by": "Helm"},
        "annotations": {"meta.helm.sh/release-name": "@@app@@",
                        "meta.helm.sh/release-namespace": "@@namespace@@"},
        "managedFields": [{"manager": "helm", "operation": "Update", "apiVersion": "v1",
                           "time": "@@created@@", "fieldsType": "FieldsV1",
                           "fieldsV1": {"f:data": {".": {}, "f:config.yaml": {},
                                                   "f:LOG_LEVEL": {}, "f:FEATURES": {}}}}],
    },
    "data": {
        "LOG_LEVEL": "info", "FEATURES": "alpha,beta,@@revision@@",
        "config.yaml": "server:\n  port: 8080\n  readTimeout: 30s\n  writeTimeout: 30s\n"
                       "upstreams:\n  - name: @@app@@-primary\n    url: http://@@app@@:8080\n"
                       "  - name: @@app@@-secondary\n    url: http://@@app@@-b:8080\n"
                       "cache:\n  ttl: 300s\n  size: 10000\n",
    },
}


@dataclass
class ConfigMapFactory:
    """ConfigMaps of about 1 KB each, deterministic given a seed."""

    seed: int = 1
    namespaces: tuple[str, ...] = NAMESPACES
    _rng: random.Random = field(init=False)
    _template: Template = field(init=False)
    _count: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed ^ 0x5EED)
        self._template = Template(_CM_DOC)

    def new(self) -> ConfigMapSeed:
        rng = self._rng
        self._count += 1
        ns = self.namespaces[rng.randrange(len(self.namespaces))]
        app = f"{SHAPES[rng.randrange(len(SHAPES))].app}-{rng.randrange(12):02d}"
        name = f"{app}-config-{self._count:05d}"
        values = {b"name": name.encode(), b"namespace": ns.encode(),
                  b"uid": _uid(rng).encode(), b"rv": b"0",
                  b"created": _ts(self._count).encode(), b"app": app.encode(),
                  b"revision": b"0"}
        return ConfigMapSeed(ns, name, values, {"app": app,
                                                "app.kubernetes.io/managed-by": "Helm"})

    def touch(self, cm: ConfigMapSeed) -> None:
        cm.revision += 1
        cm.values[b"revision"] = str(cm.revision).encode()

    def render(self, cm: ConfigMapSeed, rv: int) -> bytes:
        cm.values[b"rv"] = str(rv).encode()
        return self._template.render(cm.values)
