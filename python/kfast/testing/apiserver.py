"""A real kube-apiserver (plus its own etcd) on loopback ports, for tests and by hand.

::

    with Cluster() as cluster:           # certificates, etcd, kube-apiserver, kubeconfig
        with cluster.client() as http:   # httpx.Client as the admin (system:masters)
            http.get("/version")

From a shell: ``python -m kfast.testing.apiserver`` starts one, prints the kubeconfig path
and runs until Ctrl-C.

The apiserver runs alone: there is no controller-manager, scheduler or kubelet, so deleted
namespaces stay Terminating, Pods stay Pending and no ServiceAccount tokens appear.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from kfast.testing import _apf
from kfast.testing._binaries import KUBE_VERSION, Binaries, BinariesMissing, find_binaries
from kfast.testing._etcd import Etcd
from kfast.testing._kubeconfig import context_name, write_kubeconfig
from kfast.testing._pki import (
    ADMIN, TOKEN_ADMIN, TOKEN_ADMIN_GROUP, TOKEN_USER, USER, Pki, User, create_pki,
)
from kfast.testing._proc import Child, free_port, poll

__all__ = [
    "Cluster", "User", "Binaries", "BinariesMissing", "find_binaries", "KUBE_VERSION",
    "ADMIN", "USER", "TOKEN_USER", "TOKEN_ADMIN", "TOKEN_ADMIN_GROUP", "main",
]

START_TIMEOUT = 180.0  # seconds; 2 shared cores can make the first start slow


class Cluster:
    """etcd + kube-apiserver in ``workdir`` (a fresh temporary directory by default).

    ``apiserver_flags`` are appended after the defaults, so a repeated single-valued flag
    overrides its default (``--min-request-timeout=5``, ``--watch-cache=false`` ...); list
    flags such as ``--disable-admission-plugins`` add to it instead.
    """

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        name: str = "kfast-test",
        binaries: Binaries | None = None,
        pki: Pki | None = None,
        apiserver_flags: Sequence[str] = (),
        etcd_flags: Sequence[str] = (),
        keep_workdir: bool | None = None,
    ) -> None:
        self.name = name
        self._own_workdir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="kfast-apiserver-")) if workdir is None \
            else workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        # A caller-chosen workdir is kept (its logs are evidence); a temporary one is not.
        self.keep_workdir = (not self._own_workdir) if keep_workdir is None else keep_workdir
        self.binaries = binaries if binaries is not None else find_binaries()
        self.pki = pki if pki is not None else create_pki(self.workdir / "pki")
        self.apiserver_flags = tuple(apiserver_flags)
        self.etcd = Etcd(self.binaries.etcd, self.workdir, extra_flags=tuple(etcd_flags))
        self.apiserver = Child("kube-apiserver", self.workdir / "kube-apiserver.log")
        self.port = 0
        self.kubeconfig = self.workdir / "kubeconfig"
        self._others: list[Cluster] = []

    # -- identity -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.pki.ca_file

    @property
    def users(self) -> dict[str, User]:
        return self.pki.users

    def context(self, user: str = ADMIN) -> str:
        """The kubeconfig context name for ``user``."""
        return context_name(self.name, user)

    def ssl_context(self, user: str = ADMIN) -> ssl.SSLContext:
        """Trusts the test CA; for a certificate user, also presents its client certificate."""
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_file))
        u = self.users[user]
        if u.cert_file is not None and u.key_file is not None:
            ctx.load_cert_chain(str(u.cert_file), str(u.key_file))
        return ctx

    def client(self, user: str = ADMIN, **kwargs: Any) -> httpx.Client:
        """An ``httpx.Client`` for ``user`` with ``base_url`` set to the apiserver; other
        keyword arguments go to ``httpx.Client`` (default timeout 30 s)."""
        headers = {}
        token = self.users[user].token
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        kwargs.setdefault("timeout", 30.0)
        return httpx.Client(
            base_url=self.url, verify=self.ssl_context(user), headers=headers, **kwargs
        )

    # -- lifecycle ----------------------------------------------------------------------

    def apiserver_argv(self) -> list[str]:
        p = self.pki
        # apiserver.md §2.1; each flag's reason is there.
        return [
            str(self.binaries.kube_apiserver),
            f"--etcd-servers={self.etcd.url}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.port}",
            "--advertise-address=127.0.0.1",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            f"--tls-cert-file={p.serving_cert_file}",
            f"--tls-private-key-file={p.serving_key_file}",
            f"--client-ca-file={p.ca_file}",
            f"--token-auth-file={p.token_file}",
            f"--service-account-issuer=https://127.0.0.1:{self.port}",
            f"--service-account-signing-key-file={p.sa_key_file}",
            f"--service-account-key-file={p.sa_pub_file}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--authorization-mode=RBAC",
            "--allow-privileged=true",
            "--disable-admission-plugins=ServiceAccount",
            "--endpoint-reconciler-type=none",
            # Not 0: with 0 kube-apiserver starts no compactor at all, so nothing watches
            # compact_rev_key and the watch cache never learns of a compaction done by
            # compact_etcd() (k8s.io/apiserver storagebackend/factory/etcd3.go
            # startCompactorOnce). 24h means it never compacts by itself during a test run.
            "--etcd-compaction-interval=24h",
            "--profiling=false",
            "--v=2",
            *self.apiserver_flags,
        ]

    def start(self, timeout: float = START_TIMEOUT) -> Cluster:
        """Start etcd, then kube-apiserver; return once it is ready to serve tests."""
        try:
            self.etcd.start()
            # On a fresh etcd the watch caches would start at revision 1, and a watch from
            # resourceVersion=1 would replay history instead of answering 410 "too old" as
            # on any cluster that has lived a little. One write outside /registry moves the
            # revision past 1 first.
            self.etcd.put("kfast-testenv/created", time.strftime("%Y-%m-%dT%H:%M:%SZ"))
            self._start_apiserver(timeout, pick_port=True)
            write_kubeconfig(self.kubeconfig, cluster=self.name, server=self.url, pki=self.pki)
            self._bootstrap_rbac()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_apiserver(self, timeout: float, *, pick_port: bool = False) -> None:
        attempts = 3 if pick_port else 1
        for attempt in range(attempts):
            if pick_port:
                self.port = free_port()
            self.apiserver.start(self.apiserver_argv())
            try:
                self.wait_ready(timeout)
                return
            except RuntimeError:
                last = attempt == attempts - 1
                if last or "address already in use" not in self.apiserver.tail(20):
                    raise

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Until ``/readyz`` answers 200 and namespace ``default`` exists (the bootstrap
        controller creates it after readyz can already pass)."""
        with self.client(timeout=5.0) as http:
            def ok(path: str) -> bool | None:
                try:
                    return True if http.get(path).status_code == 200 else None
                except httpx.HTTPError:
                    return None

            alive = self.apiserver.check_alive
            poll(lambda: ok("/readyz"), timeout=timeout, what="/readyz", alive=alive)
            poll(lambda: ok("/api/v1/namespaces/default"), timeout=timeout,
                 what="namespace default", alive=alive)

    def _bootstrap_rbac(self) -> None:
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "kfast-test-admins"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "cluster-admin"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                          "name": TOKEN_ADMIN_GROUP}],
        }
        with self.client() as http:
            r = http.post("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", json=binding)
            if r.status_code not in (201, 409):  # 409: a restarted apiserver on old data
                r.raise_for_status()

    def stop(self) -> None:
        """Stop any second clusters, then kube-apiserver, then etcd."""
        for other in self._others:
            other.stop()
        self._others.clear()
        self.apiserver.stop()
        self.etcd.stop()
        if not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        else:
            shutil.rmtree(self.etcd.data_dir, ignore_errors=True)

    def __enter__(self) -> Cluster:
        return self.start() if not self.apiserver.running else self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def second_clusters(self) -> list[Cluster]:
        """Clusters from :meth:`start_second_cluster` that this one will stop."""
        return list(self._others)

    def log_tails(self, lines: int = 40) -> str:
        """The end of both logs, for a failure report."""
        return (
            f"---- {self.apiserver.log_file} (last {lines} lines) ----\n"
            f"{self.apiserver.tail(lines)}\n"
            f"---- {self.etcd.child.log_file} (last {lines} lines) ----\n"
            f"{self.etcd.child.tail(lines)}\n"
        )

    # -- faults -------------------------------------------------------------------------

    def restart_apiserver(self, timeout: float = START_TIMEOUT) -> None:
        """Stop kube-apiserver (SIGTERM) and start it again on the same port with the same
        certificates and etcd; return when it is ready. Open watches end."""
        self.apiserver.stop()
        self._start_apiserver(timeout)

    def stop_etcd(self, *, kill: bool = False) -> None:
        """Stop etcd (SIGKILL with ``kill``). The apiserver stays up and starts failing:
        5xx for reads and writes that reach etcd, readyz fails, watches break."""
        if kill:
            self.etcd.kill()
        else:
            self.etcd.stop()

    def start_etcd(self) -> None:
        """Start etcd again on the same ports and data; the apiserver reconnects by itself."""
        self.etcd.start()

    def etcd_revision(self) -> int:
        return self.etcd.revision()

    def compact_etcd(self, revision: int | None = None) -> int:
        """Compact etcd to ``revision`` (default: now) and record it in ``compact_rev_key``
        as kube-apiserver does, so lists with older resourceVersions fail with 410.

        Lists from etcd fail at once; the watch caches poll ``compact_rev_key`` about every
        15 s, so lists and watches they serve may succeed until then (poll for the 410)."""
        return self.etcd.compact(revision)

    def start_second_cluster(
        self,
        apiserver_flags: Sequence[str] = (),
        etcd_flags: Sequence[str] = (),
        timeout: float = START_TIMEOUT,
    ) -> Cluster:
        """Start another cluster with its own etcd (compaction is per etcd, never per
        prefix) and the same certificates and users; it is stopped with this one, or
        earlier by its own :meth:`stop`."""
        n = len(self._others) + 1
        other = Cluster(
            self.workdir / f"second-{n}",
            name=f"{self.name}-{n}",
            binaries=self.binaries,
            pki=self.pki,
            apiserver_flags=apiserver_flags,
            etcd_flags=etcd_flags,
            keep_workdir=self.keep_workdir,
        )
        other.start(timeout)
        self._others.append(other)
        return other

    @contextmanager
    def apf_jail(self, user: str = USER, timeout: float = 30.0) -> Iterator[None]:
        """While inside, API Priority and Fairness rejects every request of ``user`` with
        429 and ``Retry-After`` (a FlowSchema sends it to a PriorityLevel with no seats and
        Reject, and one stalled request of the user keeps that level busy; see
        :mod:`kfast.testing._apf`). Fails for system:masters users, whom APF exempts."""
        if "system:masters" in self.users[user].groups:
            raise ValueError(f"{user} is in system:masters, which APF exempts")
        with self.client() as admin, self.client(user) as jailed:
            uid = _apf.create_jail(admin, user)
            # The stalled request must land in the jail, not in global-default.
            _apf.wait_matched(jailed, uid, timeout)
            holder = _apf.SeatHolder(self.port, self.ssl_context(user), self.users[user].token)
            holder.start()
            try:
                _apf.wait_rejected(jailed, timeout)
                yield
            finally:
                holder.stop()
                _apf.delete_jail(admin, user)
                _apf.wait_released(jailed, timeout)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kfast.testing.apiserver",
        description=f"Start a kube-apiserver {KUBE_VERSION} + etcd test cluster until Ctrl-C.",
    )
    parser.add_argument("--workdir", type=Path, help="keep certificates, logs and kubeconfig here")
    parser.add_argument("--build", action="store_true", help="build the binaries if missing")
    parser.epilog = "Any other --flag=value goes to kube-apiserver, e.g. --min-request-timeout=5."
    args, extra = parser.parse_known_args(argv)
    bad = [a for a in extra if not a.startswith("--")]
    if bad:
        parser.error(f"unexpected arguments: {' '.join(bad)}")
    try:
        binaries = find_binaries(build=args.build)
    except BinariesMissing as e:
        parser.exit(2, f"error: {e}\n")
    cluster = Cluster(args.workdir, binaries=binaries, apiserver_flags=extra)
    stop = threading.Event()
    # Both stop cleanly (apiserver, then etcd); SIGINT is set explicitly because a shell
    # starts background jobs with it ignored.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        cluster.start()
        print(f"kubeconfig: {cluster.kubeconfig}")
        print(f"server:     {cluster.url}")
        print(f"contexts:   {', '.join(cluster.context(u) for u in cluster.users)}")
        print(f"logs:       {cluster.workdir}/{{kube-apiserver,etcd}}.log")
        print("running; Ctrl-C stops", flush=True)
        while not stop.wait(1.0):
            cluster.apiserver.check_alive()
            if not cluster.etcd.running:
                raise RuntimeError("etcd exited; see " + str(cluster.etcd.child.log_file))
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping...", flush=True)
        cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
