"""Fixtures for tests against a real kube-apiserver v1.37.2 + etcd (kfast.testing.apiserver).

The session starts one cluster. If the binaries are missing, ``testenv/build.sh`` builds
them (10-30 minutes cold); if that is impossible the tests fail with a message saying how to
build them. They are skipped only outside CI (CI unset) when Go itself is not installed.
When a test fails, the tails of the kube-apiserver and etcd logs are added to its report;
the whole logs stay in pytest's basetemp (``apiserver0/``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path

import httpx
import pytest

from kfast.testing import ADMIN, TOKEN_ADMIN, TOKEN_USER, USER, BinariesMissing, Cluster
from kfast.testing import find_binaries

BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "testenv" / "build.sh"

# The clusters this session started, for the failure report hook below.
_clusters: list[Cluster] = []


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """One kube-apiserver + etcd for the whole session; admin is the kubeconfig default."""
    # A cold build takes many minutes: let its progress through pytest's output capture.
    capture = request.config.pluginmanager.getplugin("capturemanager")
    uncaptured = capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()
    try:
        with uncaptured:
            binaries = find_binaries(build=True, build_script=BUILD_SCRIPT)
    except BinariesMissing as e:
        if not _in_ci() and shutil.which("go") is None:
            pytest.skip(f"no kube-apiserver for integration tests: {e}")
        pytest.fail(f"no kube-apiserver for integration tests: {e}", pytrace=False)
    c = Cluster(tmp_path_factory.mktemp("apiserver"), binaries=binaries)
    _clusters.append(c)
    try:
        c.start()
    except BaseException:
        # start() has stopped both; keep the reason next to the error.
        print(c.log_tails(80))
        raise
    try:
        yield c
    finally:
        c.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, None, None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed and _clusters and item.get_closest_marker("integration") is not None:
        for c in _clusters:
            # A second cluster's logs live under the first's workdir and are listed too.
            for other in [c, *c.second_clusters]:
                report.sections.append(
                    (f"server logs: {other.name} ({other.workdir})", other.log_tails(40))
                )


@pytest.fixture(scope="session")
def admin(cluster: Cluster) -> Iterator[httpx.Client]:
    """httpx.Client as kfast-admin (client certificate, system:masters)."""
    with cluster.client(ADMIN) as c:
        yield c


@pytest.fixture(scope="session")
def user(cluster: Cluster) -> Iterator[httpx.Client]:
    """httpx.Client as kfast-user (client certificate, no RBAC bindings)."""
    with cluster.client(USER) as c:
        yield c


@pytest.fixture(scope="session")
def token_user(cluster: Cluster) -> Iterator[httpx.Client]:
    """httpx.Client as kfast-token-user (bearer token from --token-auth-file)."""
    with cluster.client(TOKEN_USER) as c:
        yield c


@pytest.fixture(scope="session")
def token_admin(cluster: Cluster) -> Iterator[httpx.Client]:
    """httpx.Client as kfast-token-admin (bearer token, cluster-admin through RBAC)."""
    with cluster.client(TOKEN_ADMIN) as c:
        yield c


@pytest.fixture
def namespace(admin: httpx.Client) -> Iterator[str]:
    """A fresh namespace per test. Deleting it leaves it Terminating forever (there is no
    namespace controller), which is harmless: names are unique."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    r = admin.post("/api/v1/namespaces", json={"metadata": {"name": name}})
    assert r.status_code == 201, r.text
    yield name
    admin.delete(f"/api/v1/namespaces/{name}")


# The chaos cluster: its own etcd and kube-apiserver with --min-request-timeout=5, so
# watches without timeoutSeconds end every 5-10 s. One per session, shared by every module.
CHAOS_FLAGS = ["--min-request-timeout=5"]


@pytest.fixture(scope="session")
def chaos(cluster: Cluster) -> Iterator[Cluster]:
    other = cluster.start_second_cluster(CHAOS_FLAGS)
    yield other
    other.stop()


@pytest.fixture
def chaos_admin(chaos: Cluster) -> Iterator[httpx.Client]:
    with chaos.client(ADMIN) as c:
        yield c
