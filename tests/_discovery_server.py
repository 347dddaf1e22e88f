"""A fake API server for discovery unit tests, answering with documents captured from a real
kube-apiserver (tests/data/discovery-<version>.json, written by capture_discovery.py).

``FakeDiscoveryServer`` is an ``httpx.MockTransport`` handler. In ``aggregated`` mode it answers
``/api`` and ``/apis`` with the APIGroupDiscoveryList when the Accept header asks for it; in
``legacy`` mode always with APIVersions/APIGroupList, like a pre-1.26 server. Either way every
group-version's APIResourceList is served. ``add_group`` adds a CRD-like group to both forms,
``stale``/``fail`` break one group-version, and ``requests`` records what was asked.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx

DATA = Path(__file__).with_name("data")
FIXTURE = DATA / "discovery-v1.37.2.json"
CAPTURED: dict[str, Any] = json.loads(FIXTURE.read_text())


def responses() -> dict[str, Any]:
    return copy.deepcopy(CAPTURED["responses"])


class FakeDiscoveryServer:
    def __init__(self, mode: str = "aggregated", *, v2beta1: bool = False) -> None:
        self.mode = mode
        self.v2beta1 = v2beta1
        self.docs = responses()
        self.requests: list[httpx.Request] = []
        self.failures: dict[str, int] = {}

    # -- changing what is served ---------------------------------------------------------

    def add_group(self, group: str, versions: list[str], resources: list[dict[str, Any]]) -> None:
        """Serve ``resources`` (aggregated APIResourceDiscovery dicts) in each of ``versions``
        (the first is preferred) of a new group, in both discovery forms."""
        self.docs["/apis v2"]["body"]["items"].append({
            "metadata": {"name": group},
            "versions": [{"version": v, "resources": resources, "freshness": "Current"} for v in versions]})
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        self.docs["/apis"]["body"]["groups"].append(
            {"name": group, "versions": gvs, "preferredVersion": gvs[0]})
        for v in versions:
            entries = []
            for r in resources:
                entries.append({
                    "name": r["resource"], "singularName": r.get("singularResource", ""),
                    "namespaced": r["scope"] == "Namespaced", "kind": r["responseKind"]["kind"],
                    "verbs": r["verbs"], "shortNames": r.get("shortNames", []),
                    "categories": r.get("categories", [])})
                for s in r.get("subresources", []):
                    entries.append({"name": f"{r['resource']}/{s['subresource']}", "singularName": "",
                                    "namespaced": r["scope"] == "Namespaced",
                                    "kind": s["responseKind"]["kind"], "verbs": s["verbs"]})
            self.docs[f"/apis/{group}/{v}"] = {
                "content_type": "application/json",
                "body": {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{v}",
                         "resources": entries}}

    def stale(self, group: str, version: str) -> None:
        for item in self.docs["/apis v2"]["body"]["items"]:
            if item["metadata"]["name"] == group:
                for v in item["versions"]:
                    if v["version"] == version:
                        v["freshness"] = "Stale"
                        v["resources"] = []

    def fail(self, path: str, code: int = 503) -> None:
        self.failures[path] = code

    # -- answering -----------------------------------------------------------------------

    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path in self.failures:
            code = self.failures[path]
            return httpx.Response(code, json={"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                              "code": code, "reason": "ServiceUnavailable", "message": "down"})
        if path == "/version":
            return httpx.Response(200, json={"gitVersion": CAPTURED["version"], "major": "1", "minor": "37"})
        key = path
        accept = request.headers.get("accept", "")
        if path in ("/api", "/apis") and self.mode == "aggregated" and "as=APIGroupDiscoveryList" in accept:
            key = f"{path} v2"
        doc = self.docs.get(key)
        if doc is None:
            return httpx.Response(404, json={"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                             "code": 404, "reason": "NotFound", "message": "not found"})
        body = doc["body"]
        ctype = doc["content_type"]
        if key.endswith(" v2") and self.v2beta1:
            body = {**body, "apiVersion": "apidiscovery.k8s.io/v2beta1"}
            ctype = ctype.replace("v=v2;", "v=v2beta1;")
        return httpx.Response(200, content=json.dumps(body).encode(), headers={"Content-Type": ctype})


def widget_resource(plural: str = "widgets", kind: str = "Widget", *, scope: str = "Namespaced",
                    short_names: tuple[str, ...] = (), categories: tuple[str, ...] = (),
                    scale: bool = False) -> dict[str, Any]:
    """An aggregated APIResourceDiscovery entry as the server lists a CRD's resource."""
    subs = [{"subresource": "status", "responseKind": {"group": "", "version": "", "kind": kind},
             "verbs": ["get", "patch", "update"]}]
    if scale:
        subs.append({"subresource": "scale", "responseKind": {"group": "autoscaling", "version": "v1",
                                                               "kind": "Scale"},
                     "verbs": ["get", "patch", "update"]})
    return {"resource": plural, "responseKind": {"group": "", "version": "", "kind": kind}, "scope": scope,
            "singularResource": kind.lower(), "shortNames": list(short_names), "categories": list(categories),
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
            "subresources": subs}
