"""Paginated LIST on kfast's own keep-alive TLS sockets, the next page requested before the
current one is read (kfast._list_conn), against a real kube-apiserver."""

from __future__ import annotations

import httpx
import pytest
from kube_http import configmap, create

import kfast
from kfast._wire import Wire
from kfast.testing import ADMIN, TOKEN_ADMIN, Cluster

pytestmark = pytest.mark.integration


def pages(wire: Wire, path: str, params: dict[str, str]) -> tuple[list[str], set[str], int]:
    keys: list[str] = []
    rvs: set[str] = set()
    n = 0
    while True:
        page = wire.list_page(path, params)
        n += 1
        keys += [o.key for o in page.items]
        rvs.add(page.resource_version)
        if not page.continue_token:
            return keys, rvs, n
        params = {"limit": params["limit"], "continue": page.continue_token}


@pytest.mark.parametrize("user", [ADMIN, TOKEN_ADMIN])
def test_paginated_list_is_pipelined_and_matches_httpx(cluster: Cluster, admin: httpx.Client,
                                                       namespace: str, user: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    for i in range(23):
        create(admin, base, configmap(f"cm{i:02}", i=str(i)))
    cfg = kfast.load_config(cluster.kubeconfig, context=cluster.context(user))
    wire = Wire(cfg)
    assert wire.lister is not None
    # RV "" is a paginated read from etcd (the watch cache may ignore limit at RV "0").
    keys, rvs, n = pages(wire, base, {"resourceVersion": "", "limit": "5"})
    assert n == 5 and len(rvs) == 1
    assert keys == [f"{namespace}/cm{i:02}" for i in range(23)]
    assert wire.lister.pipelined_hits == 4
    fallback = Wire(cfg, transport=httpx.HTTPTransport(verify=cfg.ssl_context))
    assert fallback.lister is None
    assert pages(fallback, base, {"resourceVersion": "", "limit": "5"})[0] == keys
    wire.close()
    fallback.close()
