"""Test support for code that uses kfast: a real kube-apiserver + etcd on loopback ports.

Not imported by ``kfast`` itself; it needs the ``test`` extra (``cryptography``) and the
binaries that ``testenv/build.sh`` builds. See :mod:`kfast.testing.apiserver`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    # Lazy, so that `python -m kfast.testing.apiserver` does not find its own module
    # already imported by the package (runpy warns about that).
    if name in __all__:
        from kfast.testing import apiserver

        return getattr(apiserver, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
