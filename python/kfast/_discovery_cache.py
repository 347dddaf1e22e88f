"""kubectl's discovery disk cache: the same directory, file names, contents and TTL rule.

::

    ~/.kube/cache/discovery/127.0.0.1_6443/servergroups.json
    ~/.kube/cache/discovery/127.0.0.1_6443/v1/serverresources.json
    ~/.kube/cache/discovery/127.0.0.1_6443/apps/v1/serverresources.json

* The parent is ``$KUBECACHEDIR/discovery``, else ``~/.kube/cache/discovery`` (kubectl's
  ``--cache-dir`` default).
* The host directory is the server URL without its ``https://``/``http://`` scheme, every
  character other than ASCII letters, digits, ``_``, ``/``, ``.``, ``(`` and ``)`` replaced by
  ``_`` (cli-runtime's ``computeDiscoverCacheDir``): ``https://127.0.0.1:6443`` ->
  ``127.0.0.1_6443``. A path prefix (``https://rancher/k8s/clusters/c-1``) becomes nested
  directories, as it does for kubectl; ``.``/``..`` segments are neutralised so a URL cannot
  point the cache outside its parent.
* A file is fresh while its modification time is within the TTL (kubectl's 6 hours since
  v1.24: kubernetes/kubernetes#107141). Stale, unreadable and corrupt files count as absent.
* Files are written to a temporary name in the same directory and renamed over the old one,
  so a concurrent reader (another kfast or kubectl process) sees the old or the new file,
  never half of one.

The files hold the shapes kubectl writes (``APIGroupList``, ``APIResourceList``), so kfast and
kubectl share one cache.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from kfast._discovery_docs import APIGroupList, APIResourceList, split_group_version

__all__ = ["DEFAULT_TTL", "DiskCache", "default_cache_dir", "host_cache_dir"]

log = logging.getLogger("kfast.discovery")

DEFAULT_TTL = 6 * 3600.0
GROUPS_FILE = "servergroups.json"
RESOURCES_FILE = "serverresources.json"
# cli-runtime's "overlyCautiousIllegalFileCharacters": Go's \w is ASCII-only, hence re.ASCII.
_ILLEGAL = re.compile(r"[^(\w/.)]", re.ASCII)


def default_cache_dir() -> Path:
    """``$KUBECACHEDIR/discovery`` or ``~/.kube/cache/discovery``."""
    base = os.environ.get("KUBECACHEDIR") or os.path.join(os.path.expanduser("~"), ".kube", "cache")
    return Path(base) / "discovery"


def host_cache_dir(parent: str | os.PathLike[str], server: str) -> Path:
    """The per-server directory under ``parent``, named as kubectl names it."""
    host = server.replace("https://", "", 1).replace("http://", "", 1)
    safe = _ILLEGAL.sub("_", host)
    # kubectl would follow ".." segments; kfast keeps the directory inside its parent.
    parts = ["_" * len(p) if p in (".", "..") else p for p in safe.split("/") if p]
    return Path(parent).joinpath(*parts) if parts else Path(parent) / "_"


def _mkdirs(directory: Path) -> None:
    """``mkdir -p`` with kubectl's 0750 on every directory it creates (``os.MkdirAll(dir,
    0750)``): Path.mkdir(parents=True) gives the parents the default mode."""
    missing: list[Path] = []
    d = directory
    while not d.is_dir():
        missing.append(d)
        if d.parent == d:
            break
        d = d.parent
    for m in reversed(missing):
        try:
            m.mkdir(mode=0o750)
        except FileExistsError:
            pass  # another process made it meanwhile


class DiskCache:
    """Reads and writes one server's cache directory. Never raises for I/O or bad content:
    a failed read is a miss, a failed write is logged (the data is still used from memory)."""

    def __init__(self, directory: str | os.PathLike[str], ttl: float = DEFAULT_TTL,
                 clock: Callable[[], float] = time.time) -> None:
        self.directory = Path(directory)
        self.ttl = ttl
        self._clock = clock
        self._write_warned = False  # a read-only home (a container) warns once, not per file

    def __repr__(self) -> str:
        return f"DiskCache({str(self.directory)!r}, ttl={self.ttl})"

    def groups_path(self) -> Path:
        return self.directory / GROUPS_FILE

    def resources_path(self, gv: str) -> Path:
        group, version = split_group_version(gv)
        # split_group_version rejects empty parts; "/" in a group name cannot be served.
        return (self.directory / group / version if group else self.directory / version) / RESOURCES_FILE

    def read_groups(self) -> APIGroupList | None:
        data = self._read_fresh(self.groups_path())
        if data is None:
            return None
        try:
            doc = msgspec.json.decode(data, type=APIGroupList)
        except msgspec.DecodeError as e:
            log.warning("ignoring corrupt discovery cache file %s: %s", self.groups_path(), e)
            return None
        return doc

    def read_resources(self, gv: str) -> APIResourceList | None:
        path = self.resources_path(gv)
        data = self._read_fresh(path)
        if data is None:
            return None
        try:
            doc = msgspec.json.decode(data, type=APIResourceList)
        except msgspec.DecodeError as e:
            log.warning("ignoring corrupt discovery cache file %s: %s", path, e)
            return None
        if doc.group_version != gv:
            log.warning("ignoring discovery cache file %s: it describes %r", path, doc.group_version)
            return None
        return doc

    def write_groups(self, doc: APIGroupList) -> None:
        self._write_atomic(self.groups_path(), msgspec.json.encode(doc))

    def write_resources(self, doc: APIResourceList) -> None:
        self._write_atomic(self.resources_path(doc.group_version), msgspec.json.encode(doc))

    def _read_fresh(self, path: Path) -> bytes | None:
        try:
            st = path.stat()
            if self._clock() - st.st_mtime > self.ttl:
                return None
            return path.read_bytes()
        except OSError:
            return None

    def _write_atomic(self, path: Path, data: bytes) -> None:
        tmp: str | None = None
        try:
            _mkdirs(path.parent)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o660)  # kubectl's mode: the cache holds no secrets
            os.replace(tmp, path)
            tmp = None
        except OSError as e:
            level = logging.DEBUG if self._write_warned else logging.WARNING
            self._write_warned = True
            log.log(level, "could not write discovery cache file %s: %s (discovery is kept in memory)", path, e)
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
