"""An etcd child process and the few calls to its JSON gateway that fault tests need."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx

from kfast.testing._proc import Child, free_port, poll

__all__ = ["Etcd", "COMPACT_REV_KEY"]

# The raw etcd key (outside any --etcd-prefix) in which kube-apiserver records the revision
# it compacted to. The apiserver watches it, and the watch cache's compactor trims its own
# history to it; without it a manual compaction goes unnoticed by the cache (apiserver.md §6).
COMPACT_REV_KEY = "compact_rev_key"


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


class Etcd:
    """A single-member etcd on loopback ports, with its data in ``directory``.

    The ports and data directory stay fixed across :meth:`stop` / :meth:`start`, so an
    apiserver pointed at it reconnects to the same data.
    """

    def __init__(self, binary: Path, directory: Path, *, extra_flags: tuple[str, ...] = ()) -> None:
        self.binary = binary
        self.directory = directory
        self.data_dir = directory / "etcd-data"
        self.extra_flags = extra_flags
        self.client_port = 0
        self.peer_port = 0
        self.child = Child("etcd", directory / "etcd.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    def argv(self) -> list[str]:
        peer = f"http://127.0.0.1:{self.peer_port}"
        return [
            str(self.binary),
            "--name=kfast",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls={self.url}",
            f"--advertise-client-urls={self.url}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=kfast={peer}",
            # Durability is worthless for a throwaway test store; fsync is slow on shared disks.
            "--unsafe-no-fsync",
            "--log-level=warn",
            *self.extra_flags,
        ]

    def start(self, timeout: float = 60.0) -> None:
        """Start etcd; the first start picks free ports (retrying if one gets taken)."""
        attempts = 3 if self.client_port == 0 else 1
        for attempt in range(attempts):
            if self.client_port == 0 or attempt > 0:
                self.client_port, self.peer_port = free_port(), free_port()
            self.child.start(self.argv())
            try:
                poll(self._healthy, timeout=timeout, what="etcd /health",
                     alive=self.child.check_alive)
                return
            except RuntimeError:
                if attempt == attempts - 1 or "address already in use" not in self.child.tail():
                    raise

    def _healthy(self) -> bool | None:
        try:
            r = httpx.get(f"{self.url}/health", timeout=2.0)
        except httpx.HTTPError:
            return None
        return True if r.status_code == 200 and r.json().get("health") == "true" else None

    def stop(self) -> None:
        self.child.stop()

    def kill(self) -> None:
        self.child.kill()

    @property
    def running(self) -> bool:
        return self.child.running

    def _call(self, path: str, body: dict[str, object]) -> dict[str, object]:
        r = httpx.post(f"{self.url}/v3/{path}", json=body, timeout=30.0)
        r.raise_for_status()
        result: dict[str, object] = r.json()
        return result

    def revision(self) -> int:
        """etcd's current revision (what kube-apiserver shows as resourceVersion)."""
        header = self._call("kv/range", {"key": _b64(COMPACT_REV_KEY)})["header"]
        assert isinstance(header, dict)
        # int64 fields are JSON strings in the gRPC gateway's encoding.
        return int(header["revision"])

    def put(self, key: str, value: str) -> int:
        header = self._call("kv/put", {"key": _b64(key), "value": _b64(value)})["header"]
        assert isinstance(header, dict)
        return int(header["revision"])

    def compact(self, revision: int | None = None) -> int:
        """Compact to ``revision`` (default: the current one) the way kube-apiserver's own
        compactor does, and return the revision compacted to. Every revision below it is
        gone for lists and watches that reach etcd."""
        rev = self.revision() if revision is None else revision
        # Record it first, as the apiserver does, so its watch caches drop older history too.
        self.put(COMPACT_REV_KEY, str(rev))
        self._call("kv/compaction", {"revision": str(rev), "physical": True})
        return rev
