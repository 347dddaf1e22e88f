"""Test support for code that uses kfast: a real kube-apiserver + etcd on loopback ports.

Not imported by ``kfast`` itself; it needs the ``test`` extra (``cryptography``) and the
binaries that ``testenv/build.sh`` builds. See :mod:`kfast.testing.apiserver`.
"""

from __future__ import annotations

from kfast.testing.apiserver import (
    ADMIN,
    KUBE_VERSION,
    TOKEN_ADMIN,
    TOKEN_ADMIN_GROUP,
    TOKEN_USER,
    USER,
    Binaries,
    BinariesMissing,
    Cluster,
    User,
    find_binaries,
)

__all__ = [
    "ADMIN",
    "KUBE_VERSION",
    "TOKEN_ADMIN",
    "TOKEN_ADMIN_GROUP",
    "TOKEN_USER",
    "USER",
    "Binaries",
    "BinariesMissing",
    "Cluster",
    "User",
    "find_binaries",
]
