"""ResourceClient / AsyncResourceClient request building over httpx.MockTransport: paths,
query parameters, headers and bodies of every verb, the namespace rule, option checks and
error mapping, each through both drivers."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from _rest_mock import (CONFIGMAPS, DEPLOYMENTS, NODES, PODS, WIDGETS, call, modes, recorder,
                        status)

from kfast import ALL_NAMESPACES, errors
from kfast._client import PATCH_CONTENT_TYPES

CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}}


def only(seen: list[httpx.Request]) -> httpx.Request:
    assert len(seen) == 1, seen
    return seen[0]


def body(req: httpx.Request) -> Any:
    return json.loads(req.content)


@modes
def test_get_uses_the_default_namespace_and_decodes(mode: str) -> None:
    seen, handler = recorder(lambda r: httpx.Response(200, json={"kind": "ConfigMap", "data": {"ü": "1"}}))
    out = call(mode, handler, "get", "a")
    assert out == {"kind": "ConfigMap", "data": {"ü": "1"}}
    req = only(seen)
    assert req.method == "GET" and req.url.path == "/api/v1/namespaces/team/configmaps/a"
    assert req.headers["Authorization"] == "Bearer t0ken"
    assert "as=PartialObjectMetadata" not in req.headers.get("Accept", "")
    # Requests built by the core get the client's timeout (30 s), not none at all.
    assert req.extensions["timeout"] == {"connect": 30.0, "read": 30.0, "write": 30.0, "pool": 30.0}


@modes
@pytest.mark.parametrize(("resource", "namespace", "path"), [
    (CONFIGMAPS, "other", "/api/v1/namespaces/other/configmaps/a"),
    (NODES, None, "/api/v1/nodes/a"),
    (NODES, "ignored", "/api/v1/nodes/a"),
    (WIDGETS, None, "/apis/example.com/v1/widgets/a"),        # unknown scope: no default
    (WIDGETS, "x", "/apis/example.com/v1/namespaces/x/widgets/a"),
    (DEPLOYMENTS, None, "/apis/apps/v1/namespaces/team/deployments/a"),
])
def test_namespace_rule_for_get(mode: str, resource: Any, namespace: str | None, path: str) -> None:
    seen, handler = recorder()
    call(mode, handler, "get", "a", resource=resource, namespace=namespace, resource_version="0")
    req = only(seen)
    assert req.url.path == path and req.url.params["resourceVersion"] == "0"


@modes
def test_all_namespaces_only_for_collections(mode: str) -> None:
    seen, handler = recorder(lambda r: httpx.Response(200, json={"kind": "ConfigMapList", "metadata": {}, "items": []}))
    call(mode, handler, "list", namespace=ALL_NAMESPACES)
    assert only(seen).url.path == "/api/v1/configmaps"
    for method, args in (("get", ("a",)), ("delete", ("a",)), ("create", (CM,))):
        with pytest.raises(ValueError, match="ALL_NAMESPACES"):
            call(mode, handler, method, *args, namespace=ALL_NAMESPACES)
    with pytest.raises(ValueError, match="invalid namespace"):
        call(mode, handler, "get", "a", namespace="")


@modes
def test_create_takes_the_objects_namespace_and_refuses_a_contradiction(mode: str) -> None:
    seen, handler = recorder()
    obj = {**CM, "metadata": {"name": "a", "namespace": "mine"}}
    call(mode, handler, "create", obj, dry_run=True, field_manager="me", field_validation="Strict")
    req = only(seen)
    assert req.method == "POST" and req.url.path == "/api/v1/namespaces/mine/configmaps"
    assert dict(req.url.params) == {"dryRun": "All", "fieldManager": "me", "fieldValidation": "Strict"}
    assert req.headers["Content-Type"] == "application/json" and body(req) == obj
    with pytest.raises(ValueError, match="contradicts"):
        call(mode, handler, "create", obj, namespace="yours")
    call(mode, handler, "create", obj, namespace="mine")  # agreeing is fine
    assert seen[-1].url.path == "/api/v1/namespaces/mine/configmaps"


@modes
def test_replace_names_the_object_from_metadata(mode: str) -> None:
    seen, handler = recorder()
    call(mode, handler, "replace", CM)
    req = only(seen)
    assert (req.method, req.url.path) == ("PUT", "/api/v1/namespaces/team/configmaps/a")
    with pytest.raises(ValueError, match="metadata.name"):
        call(mode, handler, "replace", {"metadata": {}})


@modes
@pytest.mark.parametrize(("patch_type", "patch", "extra"), [
    ("strategic", {"data": {"k": "w"}}, {}),
    ("merge", {"data": {"k": None}}, {}),
    ("json", [{"op": "replace", "path": "/data/k", "value": "w"}], {}),
    ("apply", CM, {"field_manager": "me", "force": True}),
])
def test_patch_content_types(mode: str, patch_type: str, patch: Any, extra: dict[str, Any]) -> None:
    seen, handler = recorder()
    call(mode, handler, "patch", "a", patch, patch_type=patch_type, **extra)
    req = only(seen)
    assert req.method == "PATCH" and req.url.path == "/api/v1/namespaces/team/configmaps/a"
    assert req.headers["Content-Type"] == PATCH_CONTENT_TYPES[patch_type]
    assert body(req) == patch
    if patch_type == "apply":
        assert dict(req.url.params) == {"fieldManager": "me", "force": "true"}
    else:
        assert not req.url.params


@modes
def test_patch_option_checks(mode: str) -> None:
    _, handler = recorder()
    with pytest.raises(ValueError, match="patch_type"):
        call(mode, handler, "patch", "a", {}, patch_type="yaml")
    with pytest.raises(ValueError, match="force is only valid"):
        call(mode, handler, "patch", "a", {}, patch_type="merge", force=True)
    with pytest.raises(ValueError, match="field_manager"):
        call(mode, handler, "patch", "a", CM, patch_type="apply")
    with pytest.raises(TypeError, match="list of operations"):
        call(mode, handler, "patch", "a", {"op": "add"}, patch_type="json")
    with pytest.raises(ValueError, match="field_validation"):
        call(mode, handler, "patch", "a", {}, field_validation="strict")


@modes
def test_apply_is_a_server_side_apply_patch(mode: str) -> None:
    seen, handler = recorder()
    obj = {**CM, "metadata": {"name": "a", "namespace": "ns1"}}
    call(mode, handler, "apply", obj, field_manager="kfast-test", dry_run=True)
    req = only(seen)
    assert req.url.path == "/api/v1/namespaces/ns1/configmaps/a"
    assert req.headers["Content-Type"] == "application/apply-patch+yaml"
    assert dict(req.url.params) == {"dryRun": "All", "fieldManager": "kfast-test"}
    with pytest.raises(ValueError, match="apiVersion and kind"):
        call(mode, handler, "apply", {"metadata": {"name": "a"}}, field_manager="m")
    with pytest.raises(ValueError, match="field_manager"):
        call(mode, handler, "apply", CM, field_manager="")


@modes
def test_delete_sends_delete_options(mode: str) -> None:
    seen, handler = recorder(lambda r: httpx.Response(200, json={"kind": "Status", "status": "Success"}))
    out = call(mode, handler, "delete", "a", propagation_policy="Foreground", grace_period_seconds=0,
               preconditions={"uid": "u-1", "resource_version": "42"}, dry_run=True)
    assert out == {"kind": "Status", "status": "Success"}
    req = only(seen)
    assert (req.method, req.url.path) == ("DELETE", "/api/v1/namespaces/team/configmaps/a")
    assert body(req) == {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Foreground",
                         "gracePeriodSeconds": 0, "preconditions": {"uid": "u-1", "resourceVersion": "42"},
                         "dryRun": ["All"]}
    with pytest.raises(ValueError, match="propagation_policy"):
        call(mode, handler, "delete", "a", propagation_policy="background")
    with pytest.raises(ValueError, match="unknown precondition"):
        call(mode, handler, "delete", "a", preconditions={"generation": "1"})
    with pytest.raises(ValueError, match="grace_period_seconds"):
        call(mode, handler, "delete", "a", grace_period_seconds=-1)


@modes
def test_plain_delete_has_no_body(mode: str) -> None:
    seen, handler = recorder()
    call(mode, handler, "delete", "a")
    assert only(seen).content == b""


@modes
def test_delete_collection(mode: str) -> None:
    seen, handler = recorder(lambda r: httpx.Response(200, json={"kind": "ConfigMapList", "items": []}))
    call(mode, handler, "delete_collection", namespace=ALL_NAMESPACES, label_selector="app=x",
         field_selector="metadata.name!=b", propagation_policy="Background")
    req = only(seen)
    assert (req.method, req.url.path) == ("DELETE", "/api/v1/configmaps")
    assert dict(req.url.params) == {"labelSelector": "app=x", "fieldSelector": "metadata.name!=b"}
    assert body(req)["propagationPolicy"] == "Background"


@modes
def test_metadata_only_accept_headers(mode: str) -> None:
    seen, handler = recorder(lambda r: httpx.Response(200, json={"kind": "PartialObjectMetadataList",
                                                                 "metadata": {}, "items": []}))
    call(mode, handler, "get", "a", metadata_only=True)
    call(mode, handler, "list", metadata_only=True)
    call(mode, handler, "get_scale", "a", metadata_only=True, resource=DEPLOYMENTS)
    assert seen[0].headers["Accept"] == \
        "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
    assert seen[1].headers["Accept"] == \
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
    assert "PartialObject" not in seen[2].headers.get("Accept", "")  # subresources are whole


@modes
def test_subresource_paths(mode: str) -> None:
    seen, handler = recorder()
    call(mode, handler, "get_status", "d", resource=DEPLOYMENTS)
    call(mode, handler, "replace_status", {"metadata": {"name": "d"}, "status": {}}, resource=DEPLOYMENTS)
    call(mode, handler, "patch_status", "d", {"status": {"replicas": 1}}, resource=DEPLOYMENTS)
    call(mode, handler, "get_scale", "d", resource=DEPLOYMENTS)
    call(mode, handler, "replace_scale", "d", {"spec": {"replicas": 3}}, resource=DEPLOYMENTS)
    call(mode, handler, "patch_scale", "d", {"spec": {"replicas": 2}}, resource=DEPLOYMENTS)
    base = "/apis/apps/v1/namespaces/team/deployments/d"
    assert [(r.method, r.url.path) for r in seen] == [
        ("GET", f"{base}/status"), ("PUT", f"{base}/status"), ("PATCH", f"{base}/status"),
        ("GET", f"{base}/scale"), ("PUT", f"{base}/scale"), ("PATCH", f"{base}/scale")]
    assert seen[2].headers["Content-Type"] == "application/merge-patch+json"
    assert body(seen[4]) == {"spec": {"replicas": 3}}


@modes
def test_evict_posts_a_policy_v1_eviction(mode: str) -> None:
    seen, handler = recorder(lambda r: httpx.Response(201, json={"kind": "Status", "status": "Success"}))
    out = call(mode, handler, "evict", "p", resource=PODS, delete_options={"gracePeriodSeconds": 0})
    assert out["status"] == "Success"
    req = only(seen)
    assert (req.method, req.url.path) == ("POST", "/api/v1/namespaces/team/pods/p/eviction")
    assert body(req) == {"apiVersion": "policy/v1", "kind": "Eviction",
                         "metadata": {"name": "p", "namespace": "team"},
                         "deleteOptions": {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0}}
    with pytest.raises(ValueError, match="pods"):
        call(mode, handler, "evict", "p", resource=CONFIGMAPS)


@modes
def test_list_option_checks(mode: str) -> None:
    _, handler = recorder()
    with pytest.raises(ValueError, match="resource_version_match"):
        call(mode, handler, "list", resource_version_match="exact", resource_version="1")
    with pytest.raises(ValueError, match="needs a resource_version"):
        call(mode, handler, "list", resource_version_match="Exact")
    with pytest.raises(ValueError, match="page_size must be a non-negative int"):
        call(mode, handler, "list", page_size=-5)
    with pytest.raises(TypeError, match="limit"):
        call(mode, handler, "list", limit=5)  # renamed: limit now means one page (list_page)
    with pytest.raises(ValueError, match="timeout_seconds"):
        call(mode, handler, "list", timeout_seconds=1.5)


@modes
@pytest.mark.parametrize(("code", "reason", "extra", "cls"), [
    (404, "NotFound", {}, errors.NotFound),
    (409, "Conflict", {}, errors.Conflict),
    (409, "AlreadyExists", {}, errors.AlreadyExists),
    (422, "Invalid", {"details": {"causes": [{"field": "data"}]}}, errors.Invalid),
    (400, "BadRequest", {"message": 'strict decoding error: unknown field "spec.bogus"'}, errors.BadRequest),
    (429, "TooManyRequests", {"details": {"retryAfterSeconds": 0}}, errors.TooManyRequests),
])
def test_errors_are_typed(mode: str, code: int, reason: str, extra: dict[str, Any],
                          cls: type[errors.ApiError]) -> None:
    seen, handler = recorder(lambda r: status(code, reason, **extra))
    with pytest.raises(cls) as ei:
        call(mode, handler, "get", "a")
    assert ei.value.code == code and ei.value.reason == reason
    assert "t0ken" not in str(ei.value)
    # A GET that got 429 was retried (FAST: 3 attempts); the others were not.
    assert len(seen) == (3 if code == 429 else 1) and ei.value.attempts == len(seen)


@modes
def test_logs_request_parameters(mode: str) -> None:
    seen, handler = recorder(lambda r: httpx.Response(200, text="one\ntwo\n",
                                                      headers={"Content-Type": "text/plain"}))
    since = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    out = call(mode, handler, "read_logs", "p", resource=PODS, container="c", tail_lines=10,
               since_time=since, timestamps=True, previous=True, limit_bytes=100)
    assert out == "one\ntwo\n"
    req = only(seen)
    assert req.url.path == "/api/v1/namespaces/team/pods/p/log"
    assert dict(req.url.params) == {"container": "c", "tailLines": "10", "sinceTime": "2026-01-02T01:04:05Z",
                                    "limitBytes": "100", "timestamps": "true", "previous": "true"}
    with pytest.raises(ValueError, match="not both"):
        call(mode, handler, "read_logs", "p", resource=PODS, since_seconds=5, since_time=since)
    with pytest.raises(ValueError, match="timezone-aware"):
        call(mode, handler, "read_logs", "p", resource=PODS, since_time=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="subresource of core/v1 pods"):
        call(mode, handler, "read_logs", "p", resource=DEPLOYMENTS)
