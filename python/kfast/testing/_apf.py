"""An API Priority and Fairness "jail": every request of one user answered 429 at once.

A PriorityLevelConfiguration of type Limited with ``nominalConcurrencyShares: 0`` (the API
documentation calls this a jail) that may not borrow seats, with a Reject limit response,
and a FlowSchema that sends all of one user's requests there. Its ``matchingPrecedence`` is
below ``global-default`` (9900) and the catch-alls, but above ``exempt`` and ``probes`` (1, 2),
so health probes keep working. APF exempts system:masters, so jail an ordinary user.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from kfast.testing._proc import poll

__all__ = ["jail_name", "create_jail", "delete_jail", "wait_rejected", "wait_released"]

_GROUP = "/apis/flowcontrol.apiserver.k8s.io/v1"
# Any request the jailed user makes will do; this one is cheap and resource-scoped.
_PROBE = "/api/v1/namespaces/default/configmaps?limit=1"
MATCHING_PRECEDENCE = 500


def jail_name(user: str) -> str:
    return "kfast-jail-" + re.sub(r"[^a-z0-9-]", "-", user.lower())


def _create_or_replace(admin: httpx.Client, collection: str, obj: dict[str, Any]) -> None:
    r = admin.post(collection, json=obj)
    if r.status_code == 409:  # left over from an interrupted run: replace it
        name = obj["metadata"]["name"]
        current = admin.get(f"{collection}/{name}")
        current.raise_for_status()
        obj["metadata"]["resourceVersion"] = current.json()["metadata"]["resourceVersion"]
        r = admin.put(f"{collection}/{name}", json=obj)
    r.raise_for_status()


def create_jail(admin: httpx.Client, user: str) -> str:
    """Create (or replace) the jail for ``user``; return its object name."""
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
    _create_or_replace(admin, f"{_GROUP}/flowschemas", schema)
    return name


def delete_jail(admin: httpx.Client, user: str) -> None:
    name = jail_name(user)
    for collection in ("flowschemas", "prioritylevelconfigurations"):
        r = admin.delete(f"{_GROUP}/{collection}/{name}")
        if r.status_code != 404:
            r.raise_for_status()


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
