"""The discovery disk cache: kubectl's directory naming and file layout, TTL, corrupt files,
atomic writes, invalidate(), sharing between clients (sync and async)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from _discovery_server import CAPTURED, FakeDiscoveryServer
from test_discovery import SERVER, modes, with_discovery

from kfast._discovery_cache import DEFAULT_TTL, DiskCache, default_cache_dir, host_cache_dir
from kfast._discovery_docs import APIGroupList, APIResourceList
from kfast.discovery import DEFAULT_CACHE_DIR, DiscoveryData

HOST_DIR = "k8s.test_6443"


@pytest.mark.parametrize(("server", "expected"), [
    ("https://127.0.0.1:6443", "127.0.0.1_6443"),
    ("http://k8s.test:6443", "k8s.test_6443"),
    ("https://[::1]:6443", "___1__6443"),
    ("https://my-host(1):443", "my_host(1)_443"),
    ("https://rancher.example.com/k8s/clusters/c-m1", "rancher.example.com/k8s/clusters/c_m1"),
    ("https://h.example/../../etc", "h.example/__/__/etc"),
    ("https://h\u00e9te:1", "h_te_1"),
])
def test_host_directory_is_named_like_kubectl(tmp_path: Path, server: str, expected: str) -> None:
    assert host_cache_dir(tmp_path, server) == tmp_path.joinpath(*expected.split("/"))


def test_default_directory_and_ttl(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KUBECACHEDIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".kube" / "cache" / "discovery"
    monkeypatch.setenv("KUBECACHEDIR", str(tmp_path / "kc"))
    assert default_cache_dir() == tmp_path / "kc" / "discovery"
    assert DEFAULT_TTL == 6 * 3600


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@modes
def test_layout_and_contents_match_kubectl(mode: str, tmp_path: Path) -> None:
    data: DiscoveryData = with_discovery(mode, FakeDiscoveryServer(), lambda d: d.discover(), cache_dir=tmp_path)
    host = tmp_path / HOST_DIR
    expected = ["servergroups.json", "v1/serverresources.json",
                *(f"{gv}/serverresources.json" for g in data.groups[1:] for gv in g.group_versions)]
    assert files(host) == sorted(expected) and len(expected) == 24
    groups = json.loads((host / "servergroups.json").read_bytes())
    assert groups["kind"] == "APIGroupList" and groups["apiVersion"] == "v1"
    assert groups["groups"][0] == {"name": "", "versions": [{"groupVersion": "v1", "version": "v1"}],
                                   "preferredVersion": {"groupVersion": "v1", "version": "v1"}}
    auto = next(g for g in groups["groups"] if g["name"] == "autoscaling")
    assert auto["preferredVersion"] == {"groupVersion": "autoscaling/v2", "version": "v2"}
    # Every gv file holds what the server's own APIResourceList says (kubectl's format), bar
    # storageVersionHash, which aggregated discovery does not carry.
    for key, doc in CAPTURED["responses"].items():
        if " " in key or key in ("/api", "/apis"):
            continue
        gv = doc["body"]["groupVersion"]
        mine = json.loads((host / gv / "serverresources.json").read_bytes())
        assert mine["kind"] == "APIResourceList" and mine["groupVersion"] == gv

        def entries(lst: dict[str, Any]) -> list[tuple[Any, ...]]:
            return sorted((e["name"], e.get("kind"), e.get("namespaced", False), tuple(sorted(e["verbs"])),
                           tuple(e.get("shortNames", [])), tuple(e.get("categories", [])),
                           e.get("singularName", "") if "/" not in e["name"] else "")
                          for e in lst["resources"])

        assert entries(mine) == entries(doc["body"]), gv
    scale = next(e for e in json.loads((host / "apps/v1/serverresources.json").read_bytes())["resources"]
                 if e["name"] == "deployments/scale")
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")


@modes
def test_a_second_client_reads_the_cache_without_requests(mode: str, tmp_path: Path) -> None:
    first: DiscoveryData = with_discovery(mode, FakeDiscoveryServer(), lambda d: d.discover(), cache_dir=tmp_path)
    server = FakeDiscoveryServer()
    second: DiscoveryData = with_discovery(mode, server, lambda d: d.discover(), cache_dir=tmp_path)
    assert server.requests == []
    assert not second.from_server and first.from_server
    assert second.groups == first.groups and second.all_resources() == first.all_resources()


@modes
def test_a_cache_kubectl_wrote_from_the_legacy_documents_is_read(mode: str, tmp_path: Path) -> None:
    host = tmp_path / HOST_DIR
    for key, doc in CAPTURED["responses"].items():
        if key.startswith("/api/") or key.startswith("/apis/"):
            p = host / doc["body"]["groupVersion"] / "serverresources.json"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(json.dumps(doc["body"]))
    groups = CAPTURED["responses"]["/apis"]["body"]
    core = {"name": "", "versions": [{"groupVersion": "v1", "version": "v1"}],
            "preferredVersion": {"groupVersion": "v1", "version": "v1"}}
    (host / "servergroups.json").write_text(json.dumps({**groups, "groups": [core, *groups["groups"]]}))
    server = FakeDiscoveryServer()
    data: DiscoveryData = with_discovery(mode, server, lambda d: d.discover(), cache_dir=tmp_path)
    assert server.requests == [] and len(data.all_resources()) == 72


def age(path: Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


@modes
def test_expired_files_are_refetched(mode: str, tmp_path: Path) -> None:
    with_discovery(mode, FakeDiscoveryServer(), lambda d: d.discover(), cache_dir=tmp_path)
    host = tmp_path / HOST_DIR
    age(host / "apps/v1/serverresources.json", 61)
    server = FakeDiscoveryServer()
    with_discovery(mode, server, lambda d: d.discover(), cache_dir=tmp_path, ttl=60)
    assert server.paths() == ["/apis/apps/v1"]  # only the expired group-version
    assert time.time() - (host / "apps/v1/serverresources.json").stat().st_mtime < 30
    age(host / "servergroups.json", 61)
    server = FakeDiscoveryServer()
    with_discovery(mode, server, lambda d: d.discover(), cache_dir=tmp_path, ttl=60)
    assert server.paths() == ["/api", "/apis"]
    age(host / "servergroups.json", 59)
    server = FakeDiscoveryServer()
    with_discovery(mode, server, lambda d: d.discover(), cache_dir=tmp_path, ttl=60)
    assert server.paths() == []


@modes
@pytest.mark.parametrize("content", [b"", b"{not json", b'{"groups": [{"name": 5}]}', b"[]", b"\xff\xfe"])
def test_a_corrupt_groups_file_means_a_refetch(mode: str, tmp_path: Path, content: bytes) -> None:
    with_discovery(mode, FakeDiscoveryServer(), lambda d: d.discover(), cache_dir=tmp_path)
    (tmp_path / HOST_DIR / "servergroups.json").write_bytes(content)
    server = FakeDiscoveryServer()
    data: DiscoveryData = with_discovery(mode, server, lambda d: d.discover(), cache_dir=tmp_path)
    assert server.paths() == ["/api", "/apis"] and len(data.all_resources()) == 72
    assert json.loads((tmp_path / HOST_DIR / "servergroups.json").read_bytes())["kind"] == "APIGroupList"


@modes
@pytest.mark.parametrize("content", [b"{truncated", b'{"groupVersion": "batch/v1", "resources": []}',
                                     b'{"groupVersion": "apps/v1", "resources": [{"name": "x", "verbs": 1}]}'])
def test_a_corrupt_group_version_file_is_refetched_alone(mode: str, tmp_path: Path, content: bytes) -> None:
    with_discovery(mode, FakeDiscoveryServer(), lambda d: d.discover(), cache_dir=tmp_path)
    (tmp_path / HOST_DIR / "apps/v1/serverresources.json").write_bytes(content)
    server = FakeDiscoveryServer()
    data: DiscoveryData = with_discovery(mode, server, lambda d: d.discover(), cache_dir=tmp_path)
    assert server.paths() == ["/apis/apps/v1"]
    assert "deployments" in [r.resource for r in data.resources["apps/v1"]]
    assert json.loads((tmp_path / HOST_DIR / "apps/v1/serverresources.json").read_bytes())["groupVersion"] == "apps/v1"


@modes
def test_a_missing_group_version_that_still_fails_is_reported(mode: str, tmp_path: Path) -> None:
    with_discovery(mode, FakeDiscoveryServer(), lambda d: d.discover(), cache_dir=tmp_path)
    (tmp_path / HOST_DIR / "batch/v1/serverresources.json").unlink()
    server = FakeDiscoveryServer()
    server.fail("/apis/batch/v1")
    data: DiscoveryData = with_discovery(mode, server, lambda d: d.discover(), cache_dir=tmp_path)
    assert server.paths() == ["/apis/batch/v1"] and list(data.failed) == ["batch/v1"]
    assert not (tmp_path / HOST_DIR / "batch/v1/serverresources.json").exists()


@modes
def test_invalidate_bypasses_the_disk_cache_and_rewrites_it(mode: str, tmp_path: Path) -> None:
    with_discovery(mode, FakeDiscoveryServer(), lambda d: d.discover(), cache_dir=tmp_path)
    groups_file = tmp_path / HOST_DIR / "servergroups.json"
    age(groups_file, 100)
    server = FakeDiscoveryServer()

    def use(d: Any) -> Any:
        if mode == "sync":
            assert not d.discover().from_server
            d.invalidate()
            return d.discover()

        async def go() -> Any:
            assert not (await d.discover()).from_server
            d.invalidate()
            return await d.discover()

        return go()

    data: DiscoveryData = with_discovery(mode, server, use, cache_dir=tmp_path)
    assert data.from_server and server.paths() == ["/api", "/apis"]
    assert time.time() - groups_file.stat().st_mtime < 30


def test_writes_are_atomic_and_leave_no_temporary_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with_discovery("sync", FakeDiscoveryServer(), lambda d: d.discover(), cache_dir=tmp_path)
    host = tmp_path / HOST_DIR
    before = (host / "apps/v1/serverresources.json").read_bytes()
    assert not [p for p in host.rglob("*") if p.name.startswith(".")]
    assert oct((host / "apps/v1/serverresources.json").stat().st_mode & 0o777) == oct(0o660)

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    cache = DiskCache(host)
    cache.write_resources(APIResourceList(group_version="apps/v1", resources=[]))
    assert (host / "apps/v1/serverresources.json").read_bytes() == before  # the old file is intact
    assert not [p for p in host.rglob("*") if p.name.startswith(".")]


def test_an_unwritable_cache_directory_does_not_break_discovery(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    server = FakeDiscoveryServer()
    data: DiscoveryData = with_discovery("sync", server, lambda d: d.discover(), cache_dir=blocker)
    assert data.from_server and len(data.all_resources()) == 72


def test_no_disk_cache_when_cache_dir_is_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECACHEDIR", str(tmp_path))
    with_discovery("sync", FakeDiscoveryServer(), lambda d: d.discover(), cache_dir=None)
    assert list(tmp_path.iterdir()) == []
    path = with_discovery("sync", FakeDiscoveryServer(), lambda d: d.cache_path, cache_dir=tmp_path)
    assert path == tmp_path / HOST_DIR and SERVER.endswith(":6443")


def test_the_default_is_kubectls_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECACHEDIR", str(tmp_path))
    with_discovery("sync", FakeDiscoveryServer(), lambda d: d.discover(), cache_dir=DEFAULT_CACHE_DIR)
    assert (tmp_path / "discovery" / HOST_DIR / "apps/v1/serverresources.json").is_file()


def test_an_unwritable_cache_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with caplog.at_level("DEBUG", logger="kfast.discovery"):
        with_discovery("sync", FakeDiscoveryServer(), lambda d: d.discover(), cache_dir=blocker)
    writes = [r for r in caplog.records if "could not write discovery cache file" in r.getMessage()]
    assert len(writes) == 24 and [r.levelname for r in writes].count("WARNING") == 1


@given(st.text(max_size=60))
@settings(max_examples=300, deadline=None)
def test_any_server_url_maps_inside_the_parent(server: str) -> None:
    parent = Path("/cache/discovery")
    got = host_cache_dir(parent, server)
    assert got.is_relative_to(parent) and got != parent
    assert all(p not in (".", "..") for p in got.relative_to(parent).parts)
    assert all(c.isascii() and (c.isalnum() or c in "_.()") for p in got.relative_to(parent).parts for c in p)


@given(st.binary(max_size=200))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_arbitrary_bytes_in_cache_files_never_crash(tmp_path: Path, junk: bytes) -> None:
    host = tmp_path / "h"
    cache = DiskCache(host)
    (host / "apps" / "v1").mkdir(parents=True, exist_ok=True)
    (host / "servergroups.json").write_bytes(junk)
    (host / "apps/v1/serverresources.json").write_bytes(junk)
    assert cache.read_groups() is None or isinstance(cache.read_groups(), APIGroupList)
    got = cache.read_resources("apps/v1")
    assert got is None or got.group_version == "apps/v1"


def test_a_directory_where_a_file_should_be_is_a_miss(tmp_path: Path) -> None:
    host = tmp_path / "h"
    (host / "servergroups.json").mkdir(parents=True)
    cache = DiskCache(host)
    assert cache.read_groups() is None
    cache.write_groups(APIGroupList())  # cannot replace a directory: logged, not raised
    assert (host / "servergroups.json").is_dir()


@modes
def test_entries_carry_namespaced_and_subresources_their_parents_singular_name(mode: str, tmp_path: Path) -> None:
    with_discovery(mode, FakeDiscoveryServer(), lambda d: d.discover(), cache_dir=tmp_path)
    host = tmp_path / HOST_DIR
    core = json.loads((host / "v1/serverresources.json").read_bytes())["resources"]
    by_name = {e["name"]: e for e in core}
    # kubectl writes "namespaced": false (Go's field has no omitempty).
    assert by_name["nodes"]["namespaced"] is False and by_name["pods"]["namespaced"] is True
    assert by_name["nodes/status"]["namespaced"] is False
    assert by_name["pods/log"]["singularName"] == "pod" and by_name["pods/status"]["singularName"] == "pod"
    for path in host.rglob("serverresources.json"):
        for e in json.loads(path.read_bytes())["resources"]:
            assert isinstance(e["namespaced"], bool), (path, e["name"])
            if "/" in e["name"]:
                parent = next(p for p in json.loads(path.read_bytes())["resources"]
                              if p["name"] == e["name"].split("/")[0])
                assert e["singularName"] == parent["singularName"], (path, e["name"])


def test_an_entry_without_namespaced_reads_as_cluster_scoped(tmp_path: Path) -> None:
    from kfast._discovery_docs import api_resources

    import msgspec
    doc = msgspec.json.decode(b'{"groupVersion": "v1", "resources": [{"name": "x", "kind": "X", "verbs": []}]}',
                              type=APIResourceList)
    (res,) = api_resources(doc)
    assert res.namespaced is False


@modes
def test_every_directory_the_cache_creates_is_0750(mode: str, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with_discovery(mode, FakeDiscoveryServer(), lambda d: d.discover(), cache_dir=tmp_path / "new" / "parent")
    finally:
        os.umask(old)
    host = tmp_path / "new" / "parent" / HOST_DIR
    dirs = [tmp_path / "new", tmp_path / "new" / "parent", host, host / "apps", host / "apps" / "v1", host / "v1"]
    for d in dirs:
        assert d.stat().st_mode & 0o777 == 0o750, d
    assert all(p.stat().st_mode & 0o777 == 0o750 for p in host.rglob("*") if p.is_dir())


@modes
def test_cache_dir_expands_the_home_directory(mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    path = with_discovery(mode, FakeDiscoveryServer(), lambda d: d.cache_path, cache_dir="~/kcache")
    assert path == tmp_path / "kcache" / HOST_DIR
    with_discovery(mode, FakeDiscoveryServer(), lambda d: d.discover(), cache_dir="~/kcache")
    assert (tmp_path / "kcache" / HOST_DIR / "servergroups.json").is_file()
    assert not Path("~").exists()
