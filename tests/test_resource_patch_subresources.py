"""The default patch type (strategic for built-in groups, merge for the rest) and the
client-side check of subresources discovery does not list. Sync and async."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from _rest_mock import CONFIGMAPS, DEPLOYMENTS, WIDGETS, call, modes, recorder

from kfast import errors
from kfast._client import PATCH_CONTENT_TYPES
from kfast._gvk import APIResource, is_builtin_group

WIDGETS_DISCOVERED = APIResource("example.com", "v1", "widgets", "Widget", namespaced=True,
                                 subresources=("status",))
INGRESSES = APIResource("networking.k8s.io", "v1", "ingresses", "Ingress", namespaced=True,
                        subresources=("status",))


def never(req: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request may be sent: {req.method} {req.url}")


def test_builtin_groups() -> None:
    for g in ("", "apps", "batch", "networking.k8s.io", "apiextensions.k8s.io"):
        assert is_builtin_group(g), g
    for g in ("example.com", "acme.io", "k8s.io.evil.com", "monitoring.coreos.com"):
        assert not is_builtin_group(g), g


@modes
@pytest.mark.parametrize(("resource", "expected"), [
    (CONFIGMAPS, "strategic"), (DEPLOYMENTS, "strategic"), (INGRESSES, "strategic"),
    (WIDGETS, "merge"), (WIDGETS_DISCOVERED, "merge"),
])
def test_the_default_patch_type_follows_the_group(mode: str, resource: APIResource, expected: str) -> None:
    seen, handler = recorder()
    call(mode, handler, "patch", "a", {"spec": {"x": 1}}, resource=resource, namespace="ns")
    (req,) = seen
    assert req.headers["Content-Type"] == PATCH_CONTENT_TYPES[expected]
    # An explicit None is the default too.
    seen2, handler2 = recorder()
    call(mode, handler2, "patch", "a", {"spec": {"x": 1}}, resource=resource, namespace="ns", patch_type=None)
    assert seen2[0].headers["Content-Type"] == PATCH_CONTENT_TYPES[expected]


@modes
def test_an_explicit_patch_type_wins(mode: str) -> None:
    seen, handler = recorder()
    call(mode, handler, "patch", "a", {"data": {}}, patch_type="merge")
    assert seen[0].headers["Content-Type"] == "application/merge-patch+json"


@modes
@pytest.mark.parametrize("bad", ["smart", 5, ["merge"]])
def test_an_unknown_patch_type_lists_the_valid_ones(mode: str, bad: Any) -> None:
    with pytest.raises(ValueError, match="patch_type must be one of 'merge', 'strategic', 'json', 'apply'"):
        call(mode, never, "patch", "a", {"data": {}}, patch_type=bad)


@modes
@pytest.mark.parametrize(("method", "args"), [
    ("get_scale", ("a",)), ("patch_scale", ("a", {"spec": {"replicas": 2}})),
    ("replace_scale", ("a", {"spec": {"replicas": 2}})), ("get_status", ("a",)),
    ("patch_status", ("a", {"status": {}})),
    ("replace_status", ({"metadata": {"name": "a"}, "status": {}},)),
])
def test_a_subresource_discovery_does_not_list_is_refused(mode: str, method: str, args: tuple[Any, ...]) -> None:
    sub = "scale" if "scale" in method else "status"
    with pytest.raises(errors.NoMatchError,
                       match=rf"configmaps.v1 has no {sub} subresource \(its subresources: none\)"):
        call(mode, never, method, *args)


@modes
def test_the_error_names_the_subresources_there_are(mode: str) -> None:
    with pytest.raises(errors.NoMatchError, match=r"has no scale subresource \(its subresources: status\)") as e:
        call(mode, never, "get_scale", "a", resource=WIDGETS_DISCOVERED, namespace="ns")
    assert e.value.name == "widgets.v1.example.com"


@modes
def test_unknown_subresources_are_left_to_the_server(mode: str) -> None:
    seen, handler = recorder(lambda r: httpx.Response(200, json={"kind": "Scale", "spec": {"replicas": 1}}))
    out = call(mode, handler, "get_scale", "a", resource=WIDGETS, namespace="ns")
    assert out == {"kind": "Scale", "spec": {"replicas": 1}}
    assert seen[0].url.path == "/apis/example.com/v1/namespaces/ns/widgets/a/scale"


@modes
def test_a_listed_subresource_is_sent(mode: str) -> None:
    seen, handler = recorder()
    call(mode, handler, "patch_scale", "web", {"spec": {"replicas": 3}}, resource=DEPLOYMENTS)
    (req,) = seen
    assert req.url.path == "/apis/apps/v1/namespaces/team/deployments/web/scale"
    assert req.headers["Content-Type"] == "application/merge-patch+json"
