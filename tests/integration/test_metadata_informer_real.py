"""Metadata-only informers (PartialObjectMetadata) against a real kube-apiserver."""

from __future__ import annotations

import time

import httpx
import pytest
from kube_http import configmap, create

import kfast
from kfast.testing import ADMIN, Cluster

pytestmark = pytest.mark.integration


def test_metadata_only_informer_caches_partial_object_metadata(cluster: Cluster, admin: httpx.Client,
                                                                namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    for i in range(4):
        body = configmap(f"cm{i}", payload="x" * 2000)
        body["metadata"]["labels"] = {"n": str(i)}
        create(admin, base, body)
    cfg = kfast.load_config(cluster.kubeconfig, context=cluster.context(ADMIN))
    for watch_list in (True, False):
        with kfast.SharedInformerFactory(cfg, namespace=namespace, watch_list=watch_list) as f:
            meta = f.for_resource("configmaps", metadata_only=True)
            full = f.for_resource("configmaps")
            assert meta is not full
            f.start()
            assert all(f.wait_for_cache_sync(30).values())
            objs = {o.key: o for o in meta.indexer.list()}
            assert {f"{namespace}/cm{i}" for i in range(4)} <= set(objs)
            assert set(objs) == {f"{namespace}/{i['metadata']['name']}" for i in admin.get(base).json()["items"]}
            o = objs[f"{namespace}/cm1"]
            assert o.kind == "PartialObjectMetadata" and o.api_version == "meta.k8s.io/v1"
            assert o.labels == {"n": "1"} and o.uid
            assert b'"payload"' not in bytes(o)
            assert sum(x.nbytes for x in meta.indexer.list()) < sum(x.nbytes for x in full.indexer.list()) / 2
            # Watch events are metadata-only too.
            name = f"late-{int(watch_list)}"
            create(admin, base, configmap(name, payload="y" * 2000))
            end = time.monotonic() + 30
            while f"{namespace}/{name}" not in meta.indexer and time.monotonic() < end:
                time.sleep(0.05)
            late = meta.indexer.get_by_key(f"{namespace}/{name}")
            assert late is not None and late.kind == "PartialObjectMetadata" and b"yyyy" not in bytes(late)
