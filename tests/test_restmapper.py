"""RESTMapper rules over documents captured from kube-apiserver v1.37.2: every name form,
case, groups, versions, kinds, categories and the ambiguity rule (no I/O: MapperIndex)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from _discovery_server import FakeDiscoveryServer, widget_resource

from kfast import AsyncClient, Client, Config, RetryPolicy, errors
from kfast._gvk import APIResource, GroupVersionKind, GroupVersionResource
from kfast._mapper_index import MapperIndex, parse_name
from kfast.discovery import DiscoveryClient, DiscoveryData

GVR = GroupVersionResource
GVK = GroupVersionKind


def snapshot(server: FakeDiscoveryServer | None = None) -> DiscoveryData:
    server = server or FakeDiscoveryServer()
    cfg = Config.for_url("http://k8s.test", token="t")
    with Client(cfg, transport=httpx.MockTransport(server), retry=RetryPolicy(max_attempts=1)) as c:
        return DiscoveryClient(c, cache_dir=None).discover()


@pytest.fixture(scope="module")
def index() -> MapperIndex:
    return MapperIndex(snapshot())


@pytest.mark.parametrize(("name", "gvr"), [
    ("deployments", "deployments.v1.apps"), ("deployment", "deployments.v1.apps"),
    ("deploy", "deployments.v1.apps"), ("Deployment", "deployments.v1.apps"),
    ("DEPLOYMENT", "deployments.v1.apps"), ("Deployments", "deployments.v1.apps"),
    ("deployments.apps", "deployments.v1.apps"), ("deploy.apps", "deployments.v1.apps"),
    ("Deployment.apps", "deployments.v1.apps"), ("deployments.v1.apps", "deployments.v1.apps"),
    ("Deployment.v1.apps", "deployments.v1.apps"), ("  deploy  ", "deployments.v1.apps"),
    ("po", "pods.v1"), ("pods", "pods.v1"), ("pod", "pods.v1"), ("Pod", "pods.v1"), ("pods.v1", "pods.v1"),
    ("cm", "configmaps.v1"), ("svc", "services.v1"), ("ns", "namespaces.v1"), ("no", "nodes.v1"),
    ("ep", "endpoints.v1"), ("pvc", "persistentvolumeclaims.v1"), ("limits", "limitranges.v1"),
    ("crd", "customresourcedefinitions.v1.apiextensions.k8s.io"),
    ("crds", "customresourcedefinitions.v1.apiextensions.k8s.io"),
    ("CustomResourceDefinition", "customresourcedefinitions.v1.apiextensions.k8s.io"),
    ("customresourcedefinitions.apiextensions.k8s.io", "customresourcedefinitions.v1.apiextensions.k8s.io"),
    ("hpa", "horizontalpodautoscalers.v2.autoscaling"),
    ("horizontalpodautoscalers.v1.autoscaling", "horizontalpodautoscalers.v1.autoscaling"),
    ("HorizontalPodAutoscaler.v1.autoscaling", "horizontalpodautoscalers.v1.autoscaling"),
    ("storageclasses.storage", "storageclasses.v1.storage.k8s.io"), ("sc", "storageclasses.v1.storage.k8s.io"),
    ("events", "events.v1"), ("ev", "events.v1"), ("Event", "events.v1"),
    ("events.events.k8s.io", "events.v1.events.k8s.io"), ("Event.events.k8s.io", "events.v1.events.k8s.io"),
    ("ev.events.k8s.io", "events.v1.events.k8s.io"), ("events.events", "events.v1.events.k8s.io"),
    ("netpol", "networkpolicies.v1.networking.k8s.io"), ("ing", "ingresses.v1.networking.k8s.io"),
    ("pdb", "poddisruptionbudgets.v1.policy"), ("cj", "cronjobs.v1.batch"), ("jobs", "jobs.v1.batch"),
    ("sts", "statefulsets.v1.apps"), ("ds", "daemonsets.v1.apps"), ("rs", "replicasets.v1.apps"),
    ("pc", "priorityclasses.v1.scheduling.k8s.io"), ("leases", "leases.v1.coordination.k8s.io"),
    ("ip", "ipaddresses.v1.networking.k8s.io"),
])
def test_every_name_form(index: MapperIndex, name: str, gvr: str) -> None:
    assert str(index.resource_for(name).gvr) == gvr


def test_scope_kind_and_subresources_come_from_discovery(index: MapperIndex) -> None:
    ns, deploy = index.resource_for("ns"), index.resource_for("deploy")
    assert (ns.namespaced, ns.kind, ns.gvk) == (False, "Namespace", GVK("", "v1", "Namespace"))
    assert deploy.namespaced is True and "scale" in deploy.subresources
    assert index.resource_for("cm").path("kube-system", "x") == "/api/v1/namespaces/kube-system/configmaps/x"


@pytest.mark.parametrize("name", ["nosuch", "pods.nosuchgroup", "deployments.v2.apps", "", "   ",
                                  "deployments.v1", "po.apps", "deployments/scale", "apps", "v1"])
def test_unknown_names_raise_no_match(index: MapperIndex, name: str) -> None:
    with pytest.raises(errors.NoMatchError) as ei:
        index.resource_for(name)
    assert ei.value.name == name and isinstance(ei.value, LookupError)


def test_parse_name_readings() -> None:
    assert parse_name("Deploy") == [("deploy", None, None)]
    assert parse_name("deployments.v1.apps") == [("deployments", "v1", "apps"), ("deployments", None, "v1.apps")]
    assert parse_name("pods.v1") == [("pods", "v1", ""), ("pods", None, "v1")]
    assert parse_name("foo.v1beta2.example.com")[0] == ("foo", "v1beta2", "example.com")
    assert parse_name("storageclasses.storage") == [("storageclasses", None, "storage")]


def with_groups(*groups: tuple[str, list[str], list[dict[str, Any]]]) -> MapperIndex:
    server = FakeDiscoveryServer()
    for g in groups:
        server.add_group(*g)
    return MapperIndex(snapshot(server))


def test_a_name_in_several_non_core_groups_is_ambiguous_and_lists_candidates() -> None:
    idx = with_groups(("a.example.com", ["v1"], [widget_resource(short_names=("wd",))]),
                      ("b.example.com", ["v1"], [widget_resource(short_names=("wd",))]))
    for name in ("widgets", "widget", "Widget", "wd", "WIDGETS"):
        with pytest.raises(errors.AmbiguousResourceError) as ei:
            idx.resource_for(name)
        assert ei.value.candidates == ("widgets.v1.a.example.com", "widgets.v1.b.example.com")
        assert ei.value.name == name and "widgets.v1.a.example.com, widgets.v1.b.example.com" in str(ei.value)
    assert str(idx.resource_for("widgets.a.example.com").gvr) == "widgets.v1.a.example.com"
    assert str(idx.resource_for("wd.b.example.com").gvr) == "widgets.v1.b.example.com"
    assert str(idx.resource_for("Widget.v1.b.example.com").gvr) == "widgets.v1.b.example.com"


def test_the_core_group_wins_then_the_built_in_groups(caplog: pytest.LogCaptureFixture) -> None:
    idx = with_groups(("example.com", ["v1"], [widget_resource("pods", "Pod", short_names=("deploy",))]))
    with caplog.at_level("WARNING", logger="kfast.discovery"):
        assert str(idx.resource_for("pods").gvr) == "pods.v1"
        assert str(idx.resource_for("Pod").gvr) == "pods.v1"
        assert str(idx.resource_for("pods.example.com").gvr) == "pods.v1.example.com"
        # A CRD's short name clashes with apps' deployments: the built-in group wins (kubectl).
        assert str(idx.resource_for("deploy").gvr) == "deployments.v1.apps"
        assert str(idx.resource_for("deploy").gvr) == "deployments.v1.apps"
    shadowed = [r.getMessage() for r in caplog.records]
    assert shadowed == [
        "'pods' means pods.v1; it could also match lower priority resource pods.v1.example.com "
        "(qualify the name as <resource>.<group> to choose)",
        "'Pod' means pods.v1; it could also match lower priority resource pods.v1.example.com "
        "(qualify the name as <resource>.<group> to choose)",
        "'deploy' means deployments.v1.apps; it could also match lower priority resource "
        "pods.v1.example.com (qualify the name as <resource>.<group> to choose)",
    ]  # once per name, however often it is looked up


def test_a_crd_shadowing_a_built_in_plural_loses_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    idx = with_groups(("acme.io", ["v1"], [widget_resource("deployments", "Deployment", short_names=("deploy",))]))
    with caplog.at_level("WARNING", logger="kfast.discovery"):
        for name in ("deploy", "deployments", "Deployment"):
            assert str(idx.resource_for(name).gvr) == "deployments.v1.apps", name
    assert all("deployments.v1.acme.io" in r.getMessage() for r in caplog.records)
    assert len(caplog.records) == 3
    assert str(idx.resource_for("deploy.acme.io").gvr) == "deployments.v1.acme.io"


def test_core_over_another_built_in_group_is_silent(caplog: pytest.LogCaptureFixture) -> None:
    idx = with_groups(("events.k8s.io", ["v1"], [widget_resource("events", "Event")]))
    with caplog.at_level("WARNING", logger="kfast.discovery"):
        assert str(idx.resource_for("events").gvr) == "events.v1"
    assert caplog.records == []


def test_a_clash_between_built_in_groups_is_still_ambiguous() -> None:
    idx = with_groups(("x.k8s.io", ["v1"], [widget_resource(short_names=("wd",))]),
                      ("y.k8s.io", ["v1"], [widget_resource(short_names=("wd",))]),
                      ("z.example.com", ["v1"], [widget_resource(short_names=("wd",))]))
    with pytest.raises(errors.AmbiguousResourceError) as ei:
        idx.resource_for("wd")
    # The third-party candidate ranks lower: only the clash of equal rank is listed.
    assert ei.value.candidates == ("widgets.v1.x.k8s.io", "widgets.v1.y.k8s.io")


def test_a_plural_beats_a_singular_which_beats_a_short_name() -> None:
    idx = with_groups(("example.com", ["v1"], [widget_resource("deploy", "Deploy"),
                                               widget_resource("cms", "Po")]))
    assert str(idx.resource_for("deploy").gvr) == "deploy.v1.example.com"  # plural over short name
    assert str(idx.resource_for("po").gvr) == "cms.v1.example.com"  # singular over core's short name
    assert str(idx.resource_for("cm").gvr) == "configmaps.v1"


def test_preferred_version_wins_and_other_versions_fill_in() -> None:
    both = widget_resource()
    # v1 alone also serves gadgets: not in the preferred version, so v1's is used
    server = FakeDiscoveryServer()
    server.add_group("multi.example.com", ["v2", "v1"], [both])
    gadgets = server.docs["/apis/multi.example.com/v1"]["body"]["resources"]
    gadgets.append({"name": "gadgets", "singularName": "gadget", "namespaced": False, "kind": "Gadget",
                    "verbs": ["get", "list"]})
    server.mode = "legacy"
    idx = MapperIndex(snapshot(server))
    assert str(idx.resource_for("widgets").gvr) == "widgets.v2.multi.example.com"
    assert str(idx.resource_for("widgets.v1.multi.example.com").gvr) == "widgets.v1.multi.example.com"
    assert str(idx.resource_for("gadgets").gvr) == "gadgets.v1.multi.example.com"
    with pytest.raises(errors.NoMatchError):
        idx.resource_for("gadgets.v2.multi.example.com")
    assert [str(r.gvr) for r in idx.data.preferred_resources() if r.group == "multi.example.com"] == [
        "widgets.v2.multi.example.com", "gadgets.v1.multi.example.com"]


def test_kind_for_and_resource_for_kind(index: MapperIndex) -> None:
    assert index.resource_for_gvr(GVR("apps", "v1", "deployments")).gvk == GVK("apps", "v1", "Deployment")
    assert index.resource_for_gvr(GVR("apps", "", "deployments")).gvk == GVK("apps", "v1", "Deployment")
    assert index.resource_for_gvr(GVR("autoscaling", "", "horizontalpodautoscalers")).gvk == GVK(
        "autoscaling", "v2", "HorizontalPodAutoscaler")
    assert index.resource_for_gvr(GVR("", "v1", "po")).resource == "pods"
    with pytest.raises(errors.NoMatchError):
        index.resource_for_gvr(GVR("", "v1", "deployments"))  # a GVR's group is exact
    assert index.resource_for_kind(GVK("apps", "v1", "Deployment")).gvr == GVR("apps", "v1", "deployments")
    assert index.resource_for_kind(GVK("", "v1", "pod")).gvr == GVR("", "v1", "pods")
    assert index.resource_for_kind(GVK("autoscaling", "", "HorizontalPodAutoscaler")).version == "v2"
    assert index.resource_for_kind(GVK("autoscaling", "v1", "HorizontalPodAutoscaler")).version == "v1"
    assert index.resource_for_kind(GVK("events.k8s.io", "v1", "Event")).group == "events.k8s.io"
    for bad in (GVK("apps", "v1", "Pod"), GVK("apps", "v9", "Deployment"), GVK("nope", "v1", "Deployment")):
        with pytest.raises(errors.NoMatchError):
            index.resource_for_kind(bad)


def test_categories(index: MapperIndex) -> None:
    assert [str(r.gvr) for r in index.resources_for_category("all")] == [
        "pods.v1", "replicationcontrollers.v1", "services.v1", "daemonsets.v1.apps", "deployments.v1.apps",
        "replicasets.v1.apps", "statefulsets.v1.apps", "horizontalpodautoscalers.v2.autoscaling",
        "cronjobs.v1.batch", "jobs.v1.batch"]
    assert "customresourcedefinitions" in [r.resource for r in index.resources_for_category("api-extensions")]
    assert index.resources_for_category("nope") == []


def test_mapper_index_results_are_the_same_objects_discovery_holds(index: MapperIndex) -> None:
    got = index.resource_for("deploy")
    assert isinstance(got, APIResource) and got in index.data.resources["apps/v1"]


def test_async_mapper_lookup_needs_a_load_first() -> None:
    from kfast._restmapper import AsyncRESTMapper
    from kfast.discovery import AsyncDiscoveryClient

    server = FakeDiscoveryServer()

    async def go() -> str:
        cfg = Config.for_url("http://k8s.test", token="t")
        async with AsyncClient(cfg, transport=httpx.MockTransport(server)) as c:
            m = AsyncRESTMapper(AsyncDiscoveryClient(c, cache_dir=None))
            with pytest.raises(RuntimeError, match="load"):
                m.lookup("po")
            await m.load()
            return str(m.lookup("po").gvr)

    assert asyncio.run(go()) == "pods.v1" and server.paths() == ["/api", "/apis"]
