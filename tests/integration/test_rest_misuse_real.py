"""What the fresh-user attack run did, against a real kube-apiserver, sync and async: a None
name must never reach the collection, a name or namespace must never address another URL, a
subresource the resource does not have is refused client-side, and an apply conflict
carries its causes."""

from __future__ import annotations

from typing import Any

import pytest
from rest_modes import CONFIGMAPS, clients, cm, config, modes, names, run, v

from kfast import errors
from kfast._gvk import APIResource
from kfast.testing import Cluster

pytestmark = pytest.mark.integration

# As discovery describes configmaps: namespaced, no subresources.
DISCOVERED_CONFIGMAPS = APIResource("", "v1", "configmaps", "ConfigMap", namespaced=True, subresources=())


@modes
def test_none_and_bad_names_never_touch_the_collection(mode: str, cluster: Cluster, namespace: str) -> None:
    async def scenario() -> None:
        async with clients(mode, config(cluster, namespace)) as make:
            cms = make(CONFIGMAPS)
            for n in ("cm-0001", "cm-0002", "cm-0003"):
                await v(cms.create(cm(n, k="1")))
            for bad in (None, 5, ["cm-0001"]):
                with pytest.raises(TypeError, match="object name must be a str"):
                    await v(cms.delete(bad))
                with pytest.raises(TypeError):
                    await v(cms.get(bad))
                with pytest.raises(TypeError):
                    await v(cms.patch(bad, {"data": {"k": "2"}}))
            with pytest.raises(ValueError):
                await v(cms.delete(""))
            with pytest.raises(ValueError):
                await v(cms.delete(".."))
            # A query in a name is part of the name: cm-0003 is not patched.
            with pytest.raises(errors.NotFound):
                await v(cms.patch("cm-0003?x", {"data": {"k": "patched"}}))
            with pytest.raises(errors.NotFound):
                await v(cms.get("cm-0001#frag"))
            listed = await v(cms.list())
            assert names(listed["items"]) == ["cm-0001", "cm-0002", "cm-0003"]
            assert {i["data"]["k"] for i in listed["items"]} == {"1"}
    run(scenario())


@modes
@pytest.mark.parametrize("bad_ns", ["..", ".", "ctl?x", "Default", "a/b"])
def test_a_namespace_that_is_not_a_dns_label_is_refused(mode: str, cluster: Cluster, namespace: str,
                                                         bad_ns: str) -> None:
    async def scenario() -> None:
        async with clients(mode, config(cluster, namespace)) as make:
            cms = make(CONFIGMAPS)
            with pytest.raises(ValueError, match="invalid namespace"):
                await v(cms.list(namespace=bad_ns))
            with pytest.raises(ValueError, match="invalid namespace"):
                await v(cms.get("x", namespace=bad_ns))
    run(scenario())


@modes
def test_subresources_discovery_does_not_list_are_refused(mode: str, cluster: Cluster, namespace: str) -> None:
    async def scenario() -> None:
        async with clients(mode, config(cluster, namespace)) as make:
            cms = make(DISCOVERED_CONFIGMAPS)
            await v(cms.create(cm("a")))
            with pytest.raises(errors.NoMatchError, match=r"no scale subresource \(its subresources: none\)"):
                await v(cms.get_scale("a"))
            with pytest.raises(errors.NoMatchError, match="no status subresource"):
                await v(cms.patch_status("a", {"status": {}}))
    run(scenario())


@modes
def test_an_apply_conflict_carries_its_causes(mode: str, cluster: Cluster, namespace: str) -> None:
    async def scenario() -> None:
        async with clients(mode, config(cluster, namespace)) as make:
            cms = make(CONFIGMAPS)
            await v(cms.apply(cm("ssa", owner="alice"), field_manager="alice"))
            with pytest.raises(errors.Conflict) as ei:
                await v(cms.apply(cm("ssa", owner="bob"), field_manager="bob"))
            causes: list[dict[str, Any]] = ei.value.causes
            assert [(c["reason"], c["field"]) for c in causes] == [("FieldManagerConflict", ".data.owner")]
            assert "alice" in causes[0]["message"]
    run(scenario())


@modes
def test_list_page_caps_what_one_call_fetches(mode: str, cluster: Cluster, namespace: str) -> None:
    async def scenario() -> None:
        async with clients(mode, config(cluster, namespace)) as make:
            cms = make(CONFIGMAPS)
            for i in range(5):
                await v(cms.create(cm(f"p{i}")))
            page = await v(cms.list_page(limit=2))
            assert names(page["items"]) == ["p0", "p1"] and page["metadata"]["continue"]
    run(scenario())
