"""An API Priority and Fairness "jail": every request of one user answered 429 at once.

A PriorityLevelConfiguration of type Limited with ``nominalConcurrencyShares: 0`` (the API
documentation calls this a jail), which may neither lend nor borrow seats, with a Reject
limit response, and a FlowSchema that sends all of one user's requests there. Its
``matchingPrecedence`` is below ``global-default`` (9900) and the catch-alls, but above
``exempt`` and ``probes`` (1, 2), so health probes keep working. APF exempts
system:masters, so jail an ordinary user.

A zero concurrency limit alone rejects nothing when requests come one at a time: a queue set
admits a request that needs more seats than the limit whenever nothing else in it executes
(k8s.io/apiserver ``queueset.canAccommodateSeatsLocked``). So :class:`SeatHolder` keeps one
request of the jailed user executing: a POST of a SelfSubjectReview (which every
authenticated user may create) whose body never arrives. The handler blocks reading the body
while holding the seat, and every other request of that user is rejected. The server gives
up on it after ``--request-timeout`` (1 min); the holder then starts another, leaving a gap
of a few milliseconds.
"""

from __future__ import annotations

import re
import socket
import ssl
import threading
from typing import Any

import httpx

from kfast.testing._proc import poll

__all__ = ["jail_name", "create_jail", "delete_jail", "wait_matched", "wait_rejected",
           "wait_released", "SeatHolder"]

_GROUP = "/apis/flowcontrol.apiserver.k8s.io/v1"
# Any request the jailed user makes will do; this one is cheap and resource-scoped.
_PROBE = "/api/v1/namespaces/default/configmaps?limit=1"
MATCHING_PRECEDENCE = 500


def jail_name(user: str) -> str:
    return "kfast-jail-" + re.sub(r"[^a-z0-9-]", "-", user.lower())


def _create_or_replace(
    admin: httpx.Client, collection: str, obj: dict[str, Any]
) -> dict[str, Any]:
    r = admin.post(collection, json=obj)
    if r.status_code == 409:  # left over from an interrupted run: replace it
        name = obj["metadata"]["name"]
        current = admin.get(f"{collection}/{name}")
        current.raise_for_status()
        obj["metadata"]["resourceVersion"] = current.json()["metadata"]["resourceVersion"]
        r = admin.put(f"{collection}/{name}", json=obj)
    r.raise_for_status()
    stored: dict[str, Any] = r.json()
    return stored


def create_jail(admin: httpx.Client, user: str) -> str:
    """Create (or replace) the jail for ``user``; return the FlowSchema's uid."""
    name = jail_name(user)
    level: dict[str, Any] = {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "PriorityLevelConfiguration",
        "metadata": {"name": name},
        "spec": {
            "type": "Limited",
            "limited": {
                "nominalConcurrencyShares": 0,
                "lendablePercent": 0,
                "borrowingLimitPercent": 0,
                "limitResponse": {"type": "Reject"},
            },
        },
    }
    schema: dict[str, Any] = {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "FlowSchema",
        "metadata": {"name": name},
        "spec": {
            "priorityLevelConfiguration": {"name": name},
            "matchingPrecedence": MATCHING_PRECEDENCE,
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [
                {
                    "subjects": [{"kind": "User", "user": {"name": user}}],
                    "resourceRules": [
                        {
                            "verbs": ["*"],
                            "apiGroups": ["*"],
                            "resources": ["*"],
                            "namespaces": ["*"],
                            "clusterScope": True,
                        }
                    ],
                    "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                }
            ],
        },
    }
    _create_or_replace(admin, f"{_GROUP}/prioritylevelconfigurations", level)
    uid: str = _create_or_replace(admin, f"{_GROUP}/flowschemas", schema)["metadata"]["uid"]
    return uid


def delete_jail(admin: httpx.Client, user: str) -> None:
    name = jail_name(user)
    for collection in ("flowschemas", "prioritylevelconfigurations"):
        r = admin.delete(f"{_GROUP}/{collection}/{name}")
        if r.status_code != 404:
            r.raise_for_status()


def wait_matched(jailed: httpx.Client, flow_schema_uid: str, timeout: float) -> None:
    """Until APF's config controller has picked the FlowSchema up: every response names the
    FlowSchema that classified the request in ``X-Kubernetes-PF-FlowSchema-UID``."""
    def check() -> bool | None:
        uid = jailed.get(_PROBE).headers.get("X-Kubernetes-PF-FlowSchema-UID")
        return True if uid == flow_schema_uid else None

    poll(check, timeout=timeout, what="APF to classify the user's requests into the jail")


def wait_rejected(jailed: httpx.Client, timeout: float) -> httpx.Response:
    """Until the jailed user's requests get 429 (APF applies new objects within a second
    or so, through its config controller); return the first 429 response."""
    def check() -> httpx.Response | None:
        r = jailed.get(_PROBE)
        return r if r.status_code == 429 else None

    return poll(check, timeout=timeout, what="APF to reject the jailed user with 429")


def wait_released(jailed: httpx.Client, timeout: float) -> None:
    poll(lambda: True if jailed.get(_PROBE).status_code != 429 else None,
         timeout=timeout, what="APF to stop rejecting the released user")


class SeatHolder:
    """Keeps one request of a user executing (see the module docstring) until :meth:`stop`."""

    _PATH = "/apis/authentication.k8s.io/v1/selfsubjectreviews"

    def __init__(self, port: int, context: ssl.SSLContext, token: str | None) -> None:
        self._port = port
        self._context = context
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        self._head = (
            f"POST {self._PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}"
            "Content-Type: application/json\r\nContent-Length: 4096\r\n\r\n"
        ).encode()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sock: ssl.SSLSocket | None = None
        self._thread = threading.Thread(target=self._run, name="apf-seat-holder", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                raw = socket.create_connection(("127.0.0.1", self._port), timeout=10)
                sock = self._context.wrap_socket(raw, server_hostname="127.0.0.1")
                sock.settimeout(None)
                sock.sendall(self._head)
            except OSError:
                self._stop.wait(0.5)
                continue
            with self._lock:
                self._sock = sock
            try:
                # Returns when the server gives up (504 after --request-timeout) or when
                # stop() shuts the socket down.
                sock.recv(1)
            except OSError:
                pass
            finally:
                with self._lock:
                    self._sock = None
                sock.close()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            if self._sock is not None:
                try:
                    self._sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._thread.join(10)
