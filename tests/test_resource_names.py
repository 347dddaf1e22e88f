"""Object names and namespaces on the way into the URL: a name that is not one valid path
segment is refused before any request (``delete(None)`` must never address the collection),
and every segment is percent-encoded, so no argument can point a request at another URL.
Each case runs through the sync and the async client."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from _rest_mock import CONFIGMAPS, DEPLOYMENTS, PODS, call, config, modes, recorder

from kfast import Client, errors
from kfast._gvk import APIResource, check_name, check_namespace

CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}}
PODS_FULL = APIResource("", "v1", "pods", "Pod", namespaced=True, subresources=("status", "log", "eviction"))

# (method, args before the name, args after the name, extra kwargs, resource)
PER_OBJECT: list[tuple[str, tuple[Any, ...], dict[str, Any], APIResource]] = [
    ("get", (), {}, CONFIGMAPS),
    ("delete", (), {}, CONFIGMAPS),
    ("patch", ({"data": {}},), {}, CONFIGMAPS),
    ("get_status", (), {}, DEPLOYMENTS),
    ("patch_status", ({"status": {}},), {}, DEPLOYMENTS),
    ("get_scale", (), {}, DEPLOYMENTS),
    ("patch_scale", ({"spec": {"replicas": 1}},), {}, DEPLOYMENTS),
    ("replace_scale", ({"spec": {"replicas": 1}},), {}, DEPLOYMENTS),
    ("read_logs", (), {}, PODS_FULL),
    ("evict", (), {}, PODS_FULL),
]


def never(req: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request may be sent: {req.method} {req.url}")


@modes
@pytest.mark.parametrize(("method", "rest", "kw", "resource"), PER_OBJECT)
@pytest.mark.parametrize("bad", [None, 5, b"a", ["a"]])
def test_a_name_that_is_not_a_str_is_a_type_error_before_any_request(
        mode: str, method: str, rest: tuple[Any, ...], kw: dict[str, Any], resource: APIResource,
        bad: object) -> None:
    with pytest.raises(TypeError, match=f"object name must be a str, not {type(bad).__name__}"):
        call(mode, never, method, bad, *rest, resource=resource, **kw)


@modes
@pytest.mark.parametrize(("method", "rest", "kw", "resource"), PER_OBJECT)
@pytest.mark.parametrize(("bad", "why"), [("", "must not be empty"), (".", "may not be '.'"),
                                          ("..", "may not be '..'"), ("a/b", "may not contain '/'"),
                                          ("a%2Fb", "may not contain '%'")])
def test_an_invalid_name_is_a_value_error_before_any_request(
        mode: str, method: str, rest: tuple[Any, ...], kw: dict[str, Any], resource: APIResource,
        bad: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        call(mode, never, method, bad, *rest, resource=resource, **kw)


@modes
def test_logs_stream_refuses_none_before_any_request(mode: str) -> None:
    with pytest.raises(TypeError, match="object name must be a str, not NoneType"):
        call(mode, never, "logs", None, resource=PODS_FULL)


@modes
@pytest.mark.parametrize("obj", [{**CM, "metadata": {"name": 5}}, {**CM, "metadata": {"name": "../x"}}])
def test_replace_and_apply_check_the_objects_name(mode: str, obj: dict[str, Any]) -> None:
    exc = TypeError if isinstance(obj["metadata"]["name"], int) else ValueError
    with pytest.raises(exc, match="metadata.name"):
        call(mode, never, "replace", obj)
    with pytest.raises(exc, match="metadata.name"):
        call(mode, never, "apply", obj, field_manager="me")


@modes
@pytest.mark.parametrize(("name", "path"), [
    ("cm-0003?x", "/api/v1/namespaces/team/configmaps/cm-0003%3Fx"),
    ("a#b", "/api/v1/namespaces/team/configmaps/a%23b"),
    ("a b", "/api/v1/namespaces/team/configmaps/a%20b"),
    ("...", "/api/v1/namespaces/team/configmaps/..."),
    ("system:node:n1", "/api/v1/namespaces/team/configmaps/system:node:n1"),
    ("ünï", "/api/v1/namespaces/team/configmaps/%C3%BCn%C3%AF"),
])
def test_names_are_percent_encoded_into_one_segment(mode: str, name: str, path: str) -> None:
    for method, args in (("get", (name,)), ("patch", (name, {"data": {}})), ("delete", (name,))):
        seen, handler = recorder()
        call(mode, handler, method, *args)
        (req,) = seen
        assert req.url.raw_path.decode() == path, method
        assert req.url.query == b""  # nothing of the name leaked into the query


@modes
@pytest.mark.parametrize("namespace", ["ctl?x", "..", ".", "a/b", "A", "-a", "a" * 64, "a_b", "a#b", ""])
@pytest.mark.parametrize(("method", "args"), [("get", ("x",)), ("list", ()), ("watch", ()),
                                              ("delete_collection", ()), ("create", (CM,))])
def test_a_namespace_must_be_a_dns_label(mode: str, namespace: str, method: str, args: tuple[Any, ...]) -> None:
    with pytest.raises(ValueError, match="invalid namespace"):
        call(mode, never, method, *args, namespace=namespace)


@modes
def test_the_objects_own_namespace_is_checked_too(mode: str) -> None:
    with pytest.raises(ValueError, match=r"invalid namespace '\.\.'"):
        call(mode, never, "create", {**CM, "metadata": {"name": "a", "namespace": ".."}})


@modes
def test_a_namespace_of_63_characters_is_fine(mode: str) -> None:
    seen, handler = recorder()
    call(mode, handler, "get", "x", namespace="a" + "-" * 61 + "b")
    assert seen[0].url.path == f"/api/v1/namespaces/a{'-' * 61}b/configmaps/x"


@modes
def test_selectors_with_reserved_characters_stay_in_their_parameter(mode: str) -> None:
    seen, handler = recorder(lambda r: httpx.Response(200, json={"kind": "List", "metadata": {}, "items": []}))
    call(mode, handler, "list", label_selector="app in (a#b,c&d=e)", field_selector="metadata.name=x?y")
    (req,) = seen
    assert req.url.path == "/api/v1/namespaces/team/configmaps"
    assert req.url.params["labelSelector"] == "app in (a#b,c&d=e)"
    assert req.url.params["fieldSelector"] == "metadata.name=x?y"
    assert b"#" not in req.url.raw_path and set(req.url.params) == {"labelSelector", "fieldSelector", "limit"}


def test_raw_client_paths_must_be_absolute() -> None:
    with Client(config(), transport=httpx.MockTransport(never)) as k:
        with pytest.raises(ValueError, match="starting with '/'"):
            k.get("no-leading-slash")
        with pytest.raises(ValueError, match="cannot make a URL"):
            k.get("/api/v1/a#b")


def test_check_helpers() -> None:
    assert check_name("a.b-c") == "a.b-c"
    assert check_namespace("kube-system") == "kube-system"
    with pytest.raises(TypeError, match="namespace must be a str, not int"):
        check_namespace(1)
    with pytest.raises(ValueError):
        APIResource("", "v1", "configmaps").path("ns", "..")


@modes
def test_a_pod_name_with_a_query_is_encoded_in_the_eviction_path(mode: str) -> None:
    seen, handler = recorder(lambda r: httpx.Response(201, json={"kind": "Status", "status": "Success"}))
    call(mode, handler, "evict", "p?x", resource=PODS)
    (req,) = seen
    assert req.url.raw_path == b"/api/v1/namespaces/team/pods/p%3Fx/eviction"


def test_no_match_error_is_a_kfast_error() -> None:
    assert issubclass(errors.NoMatchError, errors.KfastError)
