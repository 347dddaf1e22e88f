"""The fault helpers on Cluster do what later tests will rely on.

The destructive ones run on a second cluster (its own etcd) started with a short
``--min-request-timeout``, so the session cluster stays clean for everyone else.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from kube_http import configmap, create, new_namespace

from kfast.testing import ADMIN, USER, Cluster
from kfast.testing._proc import poll

pytestmark = pytest.mark.integration


def test_second_cluster_is_separate(cluster: Cluster, chaos: Cluster,
                                    chaos_admin: httpx.Client, admin: httpx.Client) -> None:
    assert chaos.port != cluster.port
    assert chaos.etcd.url != cluster.etcd.url
    ns = new_namespace(chaos_admin, "f")
    assert admin.get(f"/api/v1/namespaces/{ns}").status_code == 404
    assert "--min-request-timeout=5" in chaos.apiserver_argv()


def test_min_request_timeout_ends_watches_early(chaos_admin: httpx.Client) -> None:
    # No timeoutSeconds: the server picks a random timeout in [5s, 10s] and then ends the
    # stream cleanly, which a client must treat as "resume", not as an error.
    start = time.monotonic()
    with chaos_admin.stream("GET", "/api/v1/configmaps",
                            params={"watch": "true", "allowWatchBookmarks": "true"},
                            timeout=30) as r:
        assert r.status_code == 200
        for _ in r.iter_lines():
            pass
    elapsed = time.monotonic() - start
    assert 4.5 <= elapsed <= 15, elapsed


def test_compaction_makes_old_exact_list_gone(chaos: Cluster,
                                              chaos_admin: httpx.Client) -> None:
    base = f"/api/v1/namespaces/{new_namespace(chaos_admin, 'f')}/configmaps"
    create(chaos_admin, base, configmap("before"))
    old_rv = chaos_admin.get(base).json()["metadata"]["resourceVersion"]
    exact = {"resourceVersion": old_rv, "resourceVersionMatch": "Exact"}
    assert chaos_admin.get(base, params=exact).status_code == 200
    for i in range(3):
        create(chaos_admin, base, configmap(f"after{i}"))

    compacted_to = chaos.compact_etcd()
    assert compacted_to > int(old_rv)

    # The watch cache notices compact_rev_key within ~15 s; until then it may still
    # serve the old snapshot from memory.
    def gone() -> httpx.Response | None:
        r = chaos_admin.get(base, params=exact)
        return r if r.status_code == 410 else None

    r = poll(gone, timeout=60, interval=1, what="410 for the compacted resourceVersion")
    status = r.json()
    assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")
    # Current data is unaffected.
    assert len(chaos_admin.get(base).json()["items"]) == 4


def test_restart_apiserver_keeps_port_and_data(chaos: Cluster,
                                               chaos_admin: httpx.Client) -> None:
    ns = new_namespace(chaos_admin, "f")
    port, pid = chaos.port, chaos.apiserver.pid
    chaos.restart_apiserver()
    assert chaos.port == port
    assert chaos.apiserver.pid != pid
    with chaos.client() as fresh:
        assert fresh.get("/readyz").status_code == 200
        assert fresh.get(f"/api/v1/namespaces/{ns}").status_code == 200


def test_stop_and_start_etcd(chaos: Cluster) -> None:
    with chaos.client(timeout=10) as http:
        chaos.stop_etcd()
        try:
            def unready() -> httpx.Response | None:
                r = http.get("/readyz", params={"verbose": "true"})
                return r if r.status_code != 200 else None

            r = poll(unready, timeout=60, interval=0.5, what="readyz to notice etcd is gone")
            assert "[-]etcd failed" in r.text
        finally:
            chaos.start_etcd()
        chaos.wait_ready(timeout=120)
        ns = new_namespace(http, "f")
        assert http.get(f"/api/v1/namespaces/{ns}").status_code == 200


def test_apf_jail_rejects_only_the_jailed_user(cluster: Cluster, user: httpx.Client,
                                               admin: httpx.Client) -> None:
    probe = "/api/v1/namespaces/default/configmaps"
    assert user.get(probe).status_code == 403  # RBAC says no, APF lets it through
    with cluster.apf_jail(USER):
        r = user.get(probe)
        assert r.status_code == 429
        assert int(r.headers["Retry-After"]) >= 1
        assert r.headers["X-Kubernetes-PF-FlowSchema-UID"]
        assert r.headers["X-Kubernetes-PF-PriorityLevel-UID"]
        assert admin.get(probe).status_code == 200  # system:masters is exempt
    assert user.get(probe).status_code == 403


def test_apf_jail_refuses_exempt_users(cluster: Cluster) -> None:
    with pytest.raises(ValueError, match="exempt"):
        with cluster.apf_jail(ADMIN):
            pass
