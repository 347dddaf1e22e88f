"""Programming errors get clear, typed errors before anything is sent: resource references
of the wrong type, create(None), URLs too long to send, a closed client, a bad timeout, and
the ``causes`` of every ApiError. Sync and async where the API has both."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from _discovery_server import FakeDiscoveryServer
from _rest_mock import CONFIGMAPS, call, config, modes, recorder

from kfast import (AsyncClient, AsyncDynamicClient, AsyncMetadataClient, AsyncResourceClient, AsyncScaleClient,
                   Client, DynamicClient, MetadataClient, ResourceClient, ScaleClient, errors)
from kfast._gvk import GroupVersionResource
from kfast.discovery import DiscoveryClient

BAD_REFS: list[Any] = [None, 1, b"pods", ["pods"], ("", "v1"), ("", "v1", 3), {"resource": "pods"}]
REF_ERROR = r"a resource is named by a str \('deploy', 'deployments.apps'\), a GroupVersionResource"


def never(req: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request may be sent: {req.method} {req.url}")


@pytest.mark.parametrize("ref", BAD_REFS)
def test_sync_resource_refs_of_the_wrong_type(ref: Any) -> None:
    with Client(config(), transport=httpx.MockTransport(never)) as k:
        with pytest.raises(TypeError, match=REF_ERROR):
            k.resource(ref)
        for front in (DynamicClient(k), MetadataClient(k)):
            with pytest.raises(TypeError, match=REF_ERROR):
                front.resource(ref)
        with pytest.raises(TypeError, match=REF_ERROR):
            ScaleClient(k).get(ref, "web")


@pytest.mark.parametrize("ref", BAD_REFS)
def test_async_resource_refs_of_the_wrong_type(ref: Any) -> None:
    async def run() -> None:
        async with AsyncClient(config(), transport=httpx.MockTransport(never)) as k:
            with pytest.raises(TypeError, match=REF_ERROR):
                await k.resource(ref)
            for front in (AsyncDynamicClient(k), AsyncMetadataClient(k)):
                with pytest.raises(TypeError, match=REF_ERROR):
                    await front.resource(ref)
            with pytest.raises(TypeError, match=REF_ERROR):
                await AsyncScaleClient(k).update(ref, "web", 2)
    asyncio.run(run())


def test_a_plain_three_str_tuple_is_a_gvr() -> None:
    server = FakeDiscoveryServer()
    with Client(config(), transport=httpx.MockTransport(server)) as k:
        rc = DynamicClient(k, DiscoveryClient(k, cache_dir=None)).resource(("apps", "v1", "deployments"))
        assert rc.resource.gvr == GroupVersionResource("apps", "v1", "deployments")
        assert rc.resource.namespaced is True


@modes
@pytest.mark.parametrize("obj", [None, "cm", ["a"], 5])
def test_create_of_something_not_an_object_is_a_type_error(mode: str, obj: Any) -> None:
    with pytest.raises(TypeError, match=f"expected an object \\(a mapping\\), got {type(obj).__name__}"):
        call(mode, never, "create", obj)


@modes
def test_a_label_selector_too_long_for_a_url_is_a_value_error(mode: str) -> None:
    huge = ",".join(f"k{i}=v{i}" for i in range(20_000))
    for method in ("list", "delete_collection"):
        with pytest.raises(ValueError, match="cannot make a URL"):
            call(mode, never, method, label_selector=huge)


def test_a_closed_client_raises_client_closed() -> None:
    seen, handler = recorder()
    k = Client(config(), transport=httpx.MockTransport(handler))
    rc = ResourceClient(k, CONFIGMAPS)
    assert rc.get("a")["kind"] == "ConfigMap"
    k.close()
    for do in (lambda: rc.get("a"), lambda: k.get("/version"), lambda: rc.list(),
               lambda: list(rc.watch(timeout_seconds=5)), lambda: k.version()):
        with pytest.raises(errors.ClientClosedError, match=r"^kfast\.Client is closed$") as ei:
            do()
        assert isinstance(ei.value, RuntimeError) and isinstance(ei.value, errors.KfastError)
    assert len(seen) == 1


def test_a_closed_async_client_raises_client_closed() -> None:
    seen, handler = recorder()

    async def run() -> None:
        k = AsyncClient(config(), transport=httpx.MockTransport(handler))
        rc = AsyncResourceClient(k, CONFIGMAPS)
        assert (await rc.get("a"))["kind"] == "ConfigMap"
        await k.close()
        with pytest.raises(errors.ClientClosedError, match=r"^kfast\.AsyncClient is closed$"):
            await rc.get("a")
        with pytest.raises(errors.ClientClosedError):
            await k.get("/version")
        with pytest.raises(errors.ClientClosedError):
            async for _ in rc.iter_list():
                pass
    asyncio.run(run())
    assert len(seen) == 1


@pytest.mark.parametrize(("timeout", "exc"), [(0, ValueError), (-1, ValueError), (0.0, ValueError),
                                              (float("nan"), ValueError), (float("inf"), ValueError),
                                              ("30", TypeError), (True, TypeError), (None, TypeError)])
def test_a_bad_timeout_is_refused_at_construction(timeout: Any, exc: type[Exception]) -> None:
    with pytest.raises(exc, match="timeout"):
        Client(config(), timeout=timeout)
    with pytest.raises(exc, match="timeout"):
        AsyncClient(config(), timeout=timeout)


def test_good_timeouts() -> None:
    with Client(config(), timeout=2.5) as k:
        assert k._http.timeout == httpx.Timeout(2.5)
    with Client(config(), timeout=httpx.Timeout(3.0, connect=1.0)) as k:
        assert k._http.timeout.connect == 1.0


def test_raw_patch_type_none_is_a_value_error_listing_the_types() -> None:
    with Client(config(), transport=httpx.MockTransport(never)) as k:
        with pytest.raises(ValueError, match="patch_type must be one of merge, strategic, json, apply"):
            k.patch("/api/v1/namespaces/a/configmaps/b", {}, patch_type=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(("status", "cls"), [
    ({"kind": "Status", "code": 409, "reason": "Conflict",
      "message": "Apply failed with 1 conflict: conflict with \"other\": .data.k",
      "details": {"causes": [{"reason": "FieldManagerConflict", "message": "conflict with \"other\"",
                              "field": ".data.k"}]}}, errors.Conflict),
    ({"kind": "Status", "code": 422, "reason": "Invalid", "message": "bad",
      "details": {"causes": [{"reason": "FieldValueInvalid", "field": "metadata.name"}]}}, errors.Invalid),
])
def test_every_api_error_carries_the_status_causes(status: dict[str, Any], cls: type[errors.ApiError]) -> None:
    err = errors.api_error_from_status(status)
    assert type(err) is cls
    assert err.causes == status["details"]["causes"]


def test_an_api_error_without_causes_has_an_empty_list() -> None:
    assert errors.api_error_from_status({"code": 404, "reason": "NotFound"}).causes == []
    assert errors.api_error_from_status({"code": 409, "details": {"causes": "junk"}}).causes == []


@modes
def test_an_apply_conflict_from_the_server_has_causes(mode: str) -> None:
    st = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 409, "reason": "Conflict",
          "message": "Apply failed with 1 conflict", "details": {"causes": [
              {"reason": "FieldManagerConflict", "message": "conflict with \"other\"", "field": ".data.k"}]}}
    _, handler = recorder(lambda r: httpx.Response(409, json=st))
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}}
    with pytest.raises(errors.Conflict) as ei:
        call(mode, handler, "apply", obj, field_manager="me")
    assert [c["field"] for c in ei.value.causes] == [".data.k"]


@pytest.mark.parametrize("bad", [None, 3])
def test_scale_clients_refuse_a_name_that_is_not_a_str_before_discovery(bad: Any) -> None:
    with Client(config(), transport=httpx.MockTransport(never)) as k:
        with pytest.raises(TypeError, match="object name must be a str"):
            ScaleClient(k).get("deploy", bad)
        with pytest.raises(TypeError, match="object name must be a str"):
            ScaleClient(k).update("deploy", bad, 2)

    async def run() -> None:
        async with AsyncClient(config(), transport=httpx.MockTransport(never)) as k:
            with pytest.raises(TypeError, match="object name must be a str"):
                await AsyncScaleClient(k).get("deploy", bad)
            with pytest.raises(TypeError, match="object name must be a str"):
                await AsyncScaleClient(k).update("deploy", bad, 2)
    asyncio.run(run())
