"""Write a kubeconfig for a test cluster: one context per user, admin current."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from kfast.testing._pki import ADMIN, Pki

__all__ = ["write_kubeconfig", "context_name"]


def _b64_file(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def context_name(cluster: str, user: str) -> str:
    """The admin's context is the cluster's own name; other users get ``<cluster>-<user>``."""
    return cluster if user == ADMIN else f"{cluster}-{user}"


def write_kubeconfig(path: Path, *, cluster: str, server: str, pki: Pki) -> Path:
    """Everything is embedded (``*-data``), so the file works when copied elsewhere."""
    users: list[dict[str, Any]] = []
    contexts: list[dict[str, Any]] = []
    for user in pki.users.values():
        cred: dict[str, str] = {}
        if user.cert_file is not None and user.key_file is not None:
            cred["client-certificate-data"] = _b64_file(user.cert_file)
            cred["client-key-data"] = _b64_file(user.key_file)
        if user.token is not None:
            cred["token"] = user.token
        users.append({"name": user.name, "user": cred})
        contexts.append(
            {
                "name": context_name(cluster, user.name),
                "context": {"cluster": cluster, "user": user.name, "namespace": "default"},
            }
        )
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [
            {
                "name": cluster,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": _b64_file(pki.ca_file),
                },
            }
        ],
        "users": users,
        "contexts": contexts,
        "current-context": context_name(cluster, ADMIN),
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path
