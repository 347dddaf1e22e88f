"""ResourceClient and AsyncResourceClient against a real kube-apiserver: CRUD of ConfigMaps,
Secrets and Deployments, every patch type, server-side apply conflicts, delete options, dry
run, field validation, status and scale subresources, eviction and metadata-only reads.

There is no controller-manager and no kubelet in the test environment: nothing acts on a
Deployment (its status is what the test writes), finalizers set by deletion options stay, and
a Pod is never scheduled.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from rest_modes import (CONFIGMAPS, DEPLOYMENTS, PODS, SECRETS, clients, cm, config, deployment, modes,
                        names, pod, run, v)

from kfast import errors
from kfast.testing import Cluster

pytestmark = pytest.mark.integration


@modes
def test_configmap_crud(mode: str, cluster: Cluster, namespace: str) -> None:
    async def scenario() -> None:
        async with clients(mode, config(cluster, namespace)) as make:
            cms = make(CONFIGMAPS)
            made = await v(cms.create({**cm("a", k="1"), "metadata": {"name": "a", "labels": {"app": "x"}}}))
            assert made["metadata"]["namespace"] == namespace and made["data"] == {"k": "1"}
            with pytest.raises(errors.AlreadyExists):
                await v(cms.create(cm("a")))
            got = await v(cms.get("a"))
            assert got["metadata"]["uid"] == made["metadata"]["uid"]
            await v(cms.create(cm("b")))
            assert names((await v(cms.list(label_selector="app=x")))["items"]) == ["a"]
            got["data"]["k"] = "2"
            replaced = await v(cms.replace(got))
            assert replaced["data"] == {"k": "2"}
            # The stale resourceVersion is an optimistic-concurrency conflict.
            with pytest.raises(errors.Conflict) as ei:
                await v(cms.replace(got))
            assert type(ei.value) is errors.Conflict and ei.value.code == 409
            # A ConfigMap without finalizers is gone at once: the answer is a Status.
            deleted = await v(cms.delete("a"))
            assert (deleted["kind"], deleted["status"]) == ("Status", "Success")
            assert deleted["details"]["name"] == "a" and deleted["details"]["uid"] == made["metadata"]["uid"]
            with pytest.raises(errors.NotFound):
                await v(cms.get("a"))
    run(scenario())


@modes
def test_secret_crud(mode: str, cluster: Cluster, namespace: str) -> None:
    async def scenario() -> None:
        async with clients(mode, config(cluster, namespace)) as make:
            secrets = make(SECRETS)
            obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque",
                   "stringData": {"password": "hunter2"}}
            await v(secrets.create(obj))
            got = await v(secrets.get("s"))
            assert base64.b64decode(got["data"]["password"]) == b"hunter2" and "stringData" not in got
            patched = await v(secrets.patch("s", {"data": {"user": base64.b64encode(b"me").decode()}},
                                            patch_type="merge"))
            assert set(patched["data"]) == {"password", "user"}
            await v(secrets.delete("s"))
            assert (await v(secrets.list()))["items"] == []
    run(scenario())


@modes
def test_deployment_crud_and_strategic_merge_by_container_name(mode: str, cluster: Cluster,
                                                               namespace: str) -> None:
    containers = [{"name": "a", "image": "img-a:1"}, {"name": "b", "image": "img-b:1"}]

    async def scenario() -> None:
        async with clients(mode, config(cluster, namespace)) as make:
            deps = make(DEPLOYMENTS)
            made = await v(deps.create(deployment("web", containers=containers)))
            assert made["apiVersion"] == "apps/v1" and made["spec"]["replicas"] == 1
            # Strategic merge: containers merge by name; "a" is kept, "b" changes.
            smp = {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "img-b:2"}]}}}}
            out = await v(deps.patch("web", smp))
            assert [(c["name"], c["image"]) for c in out["spec"]["template"]["spec"]["containers"]] == \
                [("a", "img-a:1"), ("b", "img-b:2")]
            # A JSON merge patch replaces the whole list.
            out = await v(deps.patch("web", smp, patch_type="merge"))
            assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == ["b"]
            # A JSON patch, with a test operation that holds, then one that does not.
            ops = [{"op": "test", "path": "/spec/replicas", "value": 1},
                   {"op": "replace", "path": "/spec/replicas", "value": 2}]
            out = await v(deps.patch("web", ops, patch_type="json"))
            assert out["spec"]["replicas"] == 2
            with pytest.raises(errors.ApiError) as ei:
                await v(deps.patch("web", ops, patch_type="json"))
            assert ei.value.code == 422 and isinstance(ei.value, errors.Invalid)
            # Strategic merge is for built-in kinds: a merge patch on a Deployment works too.
            out = await v(deps.patch("web", {"metadata": {"labels": {"tier": "front"}}}, patch_type="merge"))
            assert out["metadata"]["labels"] == {"app": "web", "tier": "front"}
            assert names((await v(deps.list()))["items"]) == ["web"]
            await v(deps.delete("web", propagation_policy="Background"))
            with pytest.raises(errors.NotFound):
                await v(deps.get("web"))
    run(scenario())


@modes
def test_server_side_apply_conflict_then_force(mode: str, cluster: Cluster, namespace: str) -> None:
    async def scenario() -> None:
        async with clients(mode, config(cluster, namespace)) as make:
            cms = make(CONFIGMAPS)
            first = await v(cms.apply(cm("ssa", owner="alice"), field_manager="alice"))
            assert first["data"] == {"owner": "alice"}
            with pytest.raises(errors.Conflict) as ei:
                await v(cms.apply(cm("ssa", owner="bob"), field_manager="bob"))
            assert ei.value.code == 409 and ei.value.reason == "Conflict"
            assert "alice" in ei.value.message and ".data.owner" in str(ei.value.details)
            dry = await v(cms.apply(cm("ssa", owner="bob"), field_manager="bob", force=True, dry_run=True))
            assert dry["data"] == {"owner": "bob"}
            assert (await v(cms.get("ssa")))["data"] == {"owner": "alice"}  # dry run changed nothing
            forced = await v(cms.apply(cm("ssa", owner="bob"), field_manager="bob", force=True))
            assert forced["data"] == {"owner": "bob"}
            managers = {m["manager"] for m in forced["metadata"]["managedFields"] if "f:data" in m["fieldsV1"]}
            assert managers == {"bob"}
            # The same, through patch(patch_type="apply").
            out = await v(cms.patch("ssa", cm("ssa", owner="carol"), patch_type="apply",
                                    field_manager="carol", force=True))
            assert out["data"] == {"owner": "carol"}
    run(scenario())


@modes
def test_delete_preconditions_propagation_and_dry_run(mode: str, cluster: Cluster, namespace: str) -> None:
    async def scenario() -> None:
        async with clients(mode, config(cluster, namespace)) as make:
            cms, deps = make(CONFIGMAPS), make(DEPLOYMENTS)
            made = await v(cms.create(cm("p")))
            with pytest.raises(errors.Conflict) as ei:
                await v(cms.delete("p", preconditions={"uid": "00000000-0000-0000-0000-000000000000"}))
            assert "the UID in the precondition" in ei.value.message
            with pytest.raises(errors.Conflict):
                await v(cms.delete("p", preconditions={"resourceVersion": "1"}))
            await v(cms.delete("p", dry_run=True))
            assert (await v(cms.get("p")))["metadata"]["uid"] == made["metadata"]["uid"]
            await v(cms.delete("p", preconditions={"uid": made["metadata"]["uid"],
                                                    "resourceVersion": made["metadata"]["resourceVersion"]}))
            with pytest.raises(errors.NotFound):
                await v(cms.get("p"))
            # Foreground and Orphan leave the object with a finalizer for the garbage
            # collector (which this environment does not run); Background deletes it now.
            for policy, finalizer in (("Foreground", "foregroundDeletion"), ("Orphan", "orphan")):
                name = f"d-{policy.lower()}"
                await v(deps.create(deployment(name)))
                out = await v(deps.delete(name, propagation_policy=policy))
                assert out["kind"] == "Deployment" and out["metadata"]["deletionTimestamp"]
                assert finalizer in out["metadata"]["finalizers"]
                still = await v(deps.get(name))
                assert still["metadata"]["deletionTimestamp"] and finalizer in still["metadata"]["finalizers"]
                await v(deps.patch(name, {"metadata": {"finalizers": None}}, patch_type="merge"))
            # Dry-run create: the answer is the object as it would be; nothing is stored.
            dry = await v(cms.create(cm("ghost"), dry_run=True))
            assert dry["metadata"]["name"] == "ghost" and dry["metadata"].get("uid")
            with pytest.raises(errors.NotFound):
                await v(cms.get("ghost"))
            # delete_collection by label selector
            for n in ("x1", "x2", "y1"):
                await v(cms.create({**cm(n), "metadata": {"name": n, "labels": {"g": n[0]}}}))
            await v(cms.delete_collection(label_selector="g=x"))
            assert names((await v(cms.list()))["items"]) == ["y1"]
    run(scenario())


@modes
def test_field_validation(mode: str, cluster: Cluster, namespace: str) -> None:
    warnings: list[str] = []

    async def scenario() -> None:
        async with clients(mode, config(cluster, namespace), warning_handler=warnings.append) as make:
            cms = make(CONFIGMAPS)
            bad: dict[str, Any] = {**cm("fv"), "bogus": 1}
            with pytest.raises(errors.BadRequest) as ei:
                await v(cms.create(bad, field_validation="Strict"))
            assert 'unknown field "bogus"' in ei.value.message
            with pytest.raises(errors.NotFound):
                await v(cms.get("fv"))
            await v(cms.create(bad, field_validation="Warn"))
            assert any('unknown field "bogus"' in w for w in warnings)
            # The real server answers a create with 400, but a patch with 422.
            with pytest.raises(errors.Invalid) as inv:
                await v(cms.patch("fv", {"data": {"a": "b"}, "nope": True}, patch_type="merge",
                                  field_validation="Strict"))
            assert 'unknown field "nope"' in inv.value.message
            with pytest.raises(ValueError):
                await v(cms.create(bad, field_validation="strict"))
    run(scenario())


@modes
def test_status_and_scale_subresources(mode: str, cluster: Cluster, namespace: str) -> None:
    async def scenario() -> None:
        async with clients(mode, config(cluster, namespace)) as make:
            deps = make(DEPLOYMENTS)
            await v(deps.create(deployment("sub", replicas=1)))
            scale = await v(deps.get_scale("sub"))
            assert (scale["kind"], scale["apiVersion"], scale["spec"]["replicas"]) == ("Scale", "autoscaling/v1", 1)
            scale["spec"]["replicas"] = 3
            out = await v(deps.replace_scale("sub", scale))
            assert out["spec"]["replicas"] == 3
            assert (await v(deps.get("sub")))["spec"]["replicas"] == 3
            out = await v(deps.patch_scale("sub", {"spec": {"replicas": 5}}))
            assert out["spec"]["replicas"] == 5 and (await v(deps.get("sub")))["spec"]["replicas"] == 5
            # Status: a PUT to /status changes the status only (the spec change is ignored).
            d = await v(deps.get_status("sub"))
            d["status"] = {"replicas": 2, "updatedReplicas": 2, "readyReplicas": 1, "availableReplicas": 1,
                           "observedGeneration": d["metadata"]["generation"]}
            d["spec"]["replicas"] = 9
            out = await v(deps.replace_status(d))
            assert out["status"]["readyReplicas"] == 1 and out["spec"]["replicas"] == 5
            out = await v(deps.patch_status("sub", {"status": {"readyReplicas": 2, "availableReplicas": 2}}))
            assert (out["status"]["readyReplicas"], out["status"]["availableReplicas"]) == (2, 2)
            again = await v(deps.get("sub"))
            assert again["status"]["replicas"] == 2 and again["spec"]["replicas"] == 5
            # Server-side apply of the status: availableReplicas belongs to the manager of
            # the updates above ("kfast", the client's user agent), hence force.
            applied = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "sub"},
                       "status": {"availableReplicas": 1}}
            with pytest.raises(errors.Conflict, match="availableReplicas"):
                await v(deps.apply(applied, field_manager="status-writer", subresource="status"))
            out = await v(deps.apply(applied, field_manager="status-writer", subresource="status", force=True))
            assert (out["status"]["availableReplicas"], out["status"]["readyReplicas"]) == (1, 2)
    run(scenario())


@modes
def test_evicting_an_unscheduled_pod_deletes_it(mode: str, cluster: Cluster, namespace: str) -> None:
    async def scenario() -> None:
        async with clients(mode, config(cluster, namespace)) as make:
            pods = make(PODS)
            made = await v(pods.create(pod("victim")))
            assert not made["spec"].get("nodeName")  # nothing schedules it here
            out = await v(pods.evict("victim"))
            assert (out["kind"], out["status"]) == ("Status", "Success")
            # A pod that never ran on a node has nothing to wait for: deleted at once.
            with pytest.raises(errors.NotFound):
                await v(pods.get("victim"))
            with pytest.raises(errors.NotFound):
                await v(pods.evict("victim"))
    run(scenario())


@modes
def test_metadata_only_get_and_list(mode: str, cluster: Cluster, namespace: str) -> None:
    async def scenario() -> None:
        async with clients(mode, config(cluster, namespace)) as make:
            await v(make(CONFIGMAPS).create({**cm("m", big="x" * 1000), "metadata": {"name": "m",
                                                                                       "labels": {"l": "1"}}}))
            meta = make(CONFIGMAPS, metadata_only=True)
            one = await v(meta.get("m"))
            assert (one["kind"], one["apiVersion"]) == ("PartialObjectMetadata", "meta.k8s.io/v1")
            assert one["metadata"]["labels"] == {"l": "1"} and "data" not in one
            lst = await v(meta.list())
            assert lst["kind"] == "PartialObjectMetadataList" and names(lst["items"]) == ["m"]
            assert "data" not in lst["items"][0] and lst["metadata"]["resourceVersion"]
    run(scenario())
