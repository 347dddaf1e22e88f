"""Small helpers for talking to kube-apiserver with plain httpx in the integration tests.

kfast's own REST client and informer are not used here on purpose: these tests check the
test environment itself, and what the real server sends on the wire.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

Event = dict[str, Any]


def new_namespace(client: httpx.Client, prefix: str = "t") -> str:
    """A fresh namespace (on clusters without the per-test ``namespace`` fixture)."""
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    create(client, "/api/v1/namespaces", {"metadata": {"name": name}})
    return name


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def create(client: httpx.Client, path: str, obj: dict[str, Any]) -> dict[str, Any]:
    r = client.post(path, json=obj)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def watch(
    client: httpx.Client,
    path: str,
    params: dict[str, str],
    *,
    until: Callable[[Event], bool],
    timeout: float = 30.0,
) -> list[Event]:
    """Read watch events from ``path`` until ``until(event)`` is true; return them all.

    The server is asked to end the watch after ``timeout`` seconds as well, so a missing
    event fails the test instead of hanging it."""
    query = {"watch": "true", "timeoutSeconds": str(int(timeout)), **params}
    events: list[Event] = []
    deadline = time.monotonic() + timeout + 5
    with client.stream("GET", path, params=query, timeout=timeout + 5) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("application/json")
        for line in r.iter_lines():
            if not line.strip():
                continue
            event: Event = json.loads(line)
            events.append(event)
            if until(event) or time.monotonic() > deadline:
                break
    assert events and until(events[-1]), f"stream ended without the awaited event: {events}"
    return events


def is_initial_events_end(event: Event) -> bool:
    annotations = event["object"]["metadata"].get("annotations") or {}
    return event["type"] == "BOOKMARK" and annotations.get("k8s.io/initial-events-end") == "true"
