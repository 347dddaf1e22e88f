"""SharedInformerFactory against the embedded simulator."""

from __future__ import annotations

import pytest

import kfast
from kfast import index
from kfast._factory import InformerKey, parse_resource
from kfast.simulator import Simulator

GVR = kfast.GroupVersionResource


def test_parse_resource_without_a_restmapper() -> None:
    assert parse_resource("pods") == GVR("", "v1", "pods")
    assert parse_resource("deployments.v1.apps") == GVR("apps", "v1", "deployments")
    assert parse_resource("widgets.v1beta2.example.com") == GVR("example.com", "v1beta2", "widgets")
    assert str(GVR("apps", "v1", "deployments")) == "deployments.v1.apps"
    for name in ("Deployment", "deployments.apps", ""):
        with pytest.raises(LookupError, match="resolver"):
            parse_resource(name)


def test_one_informer_per_resource_and_options_shared_by_callers() -> None:
    with Simulator(pods=40, configmaps=15, seed=4, bookmark_interval=3600) as sim:
        resolved: list[str] = []

        def resolver(name: str) -> kfast.GroupVersionResource:  # what a RESTMapper would do
            resolved.append(name)
            return {"Pod": GVR("", "v1", "pods"), "cm": GVR("", "v1", "configmaps")}[name]

        with kfast.SharedInformerFactory(kfast.Config.for_url(sim.url), resolver=resolver) as f:
            pods = f.for_resource(GVR("", "v1", "pods"), indexers={"app": index.by_label("app")})
            assert f.informer(("", "v1", "pods")) is pods
            assert f.for_resource("Pod", indexers={"node": index.by_field("spec.nodeName")}) is pods
            assert pods.index_names >= {"app", "node"}
            ns = sim.keys("pods")[0].split("/")[0]
            in_ns = f.for_resource(GVR("", "v1", "pods"), namespace=ns)
            selected = f.for_resource(GVR("", "v1", "pods"), label_selector="tier=api")
            assert len({id(pods), id(in_ns), id(selected)}) == 3
            cms = f.for_resource("cm")
            assert resolved == ["Pod", "cm"]
            assert not pods.started
            f.start()
            synced = f.wait_for_cache_sync(10)
            assert synced == {
                InformerKey(GVR("", "v1", "pods"), None, None, None): True,
                InformerKey(GVR("", "v1", "pods"), ns, None, None): True,
                InformerKey(GVR("", "v1", "pods"), None, "tier=api", None): True,
                InformerKey(GVR("", "v1", "configmaps"), None, None, None): True,
            }
            assert len(pods.indexer) == 40 and len(cms.indexer) == 15
            assert {o.key for o in in_ns.lister.list()} == {k for k in sim.keys("pods") if k.startswith(ns + "/")}
            assert all(o.labels.get("tier") == "api" for o in selected.lister.list())
            # The shared index is usable by both callers.
            node = next(o["spec"]["nodeName"] for o in pods.lister.list() if "nodeName" in o["spec"])
            assert pods.lister.by_index("node", node)
            # Asked for after start: started at once.
            late = f.for_resource(GVR("", "v1", "configmaps"), namespace=ns)
            assert late.started and late.wait_for_sync(10)
            threads = [t for inf in f.informers().values() for t in inf._threads]
        assert not any(t.is_alive() for t in threads)
        with pytest.raises(RuntimeError, match="shut down"):
            f.for_resource("cm")


def test_default_resolver_without_discovery_takes_core_plurals() -> None:
    """The simulator serves no discovery: plain plurals are core/v1, anything else is a
    typed NoMatchError (never a guess)."""
    with Simulator(pods=3, seed=1) as sim, kfast.SharedInformerFactory(kfast.Config.for_url(sim.url)) as f:
        assert f.resolve("pods") == GVR("", "v1", "pods")
        assert f.resolve("deployments.v1.apps") == GVR("apps", "v1", "deployments")
        with pytest.raises(kfast.errors.NoMatchError, match="Deployment"):
            f.resolve("Deployment")
        with pytest.raises(LookupError):
            f.resolve("deployments.apps")


def test_wait_for_cache_sync_reports_unsynced() -> None:
    with Simulator(pods=5, seed=1) as sim:
        sim.fail_next_requests(500, count=1000)
        f = kfast.SharedInformerFactory(kfast.Config.for_url(sim.url), namespace="default")
        f.for_resource("pods")
        not_started = f.wait_for_cache_sync(0.1)
        assert list(not_started.values()) == [False]
        f.start()
        assert list(f.wait_for_cache_sync(0.3).values()) == [False]
        assert list(f.informers())[0].namespace == "default"
        f.shutdown()
