"""Python transforms for :class:`kfast.SharedIndexInformer` (``transform=``): change an
object before it is cached, typically to drop fields a controller never reads.

This is the slow path: each object is decoded and re-encoded in Python, and the watch is
read through the Python event path. Native byte-splicing transforms in Rust are planned.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from kfast import _native
from kfast._feed import Transform

__all__ = ["Transform", "drop_fields", "drop_managed_fields", "LAST_APPLIED", "MANAGED_FIELDS"]

MANAGED_FIELDS: tuple[str, ...] = ("metadata", "managedFields")
LAST_APPLIED: tuple[str, ...] = (
    "metadata", "annotations", "kubectl.kubernetes.io/last-applied-configuration")


def drop_fields(*paths: Sequence[str]) -> Transform:
    """A transform removing each field path (a sequence of keys, so keys may contain dots,
    e.g. :data:`LAST_APPLIED`). Objects that have none of the fields are kept as they are,
    without re-encoding."""
    wanted = [tuple(p) for p in paths if p]

    def transform(obj: _native.StoredObject) -> _native.StoredObject:
        doc: Any = msgspec.json.decode(obj)
        changed = False
        for path in wanted:
            node = doc
            for key in path[:-1]:
                node = node.get(key) if isinstance(node, dict) else None
                if node is None:
                    break
            if isinstance(node, dict) and path[-1] in node:
                del node[path[-1]]
                changed = True
        return _native.StoredObject(msgspec.json.encode(doc)) if changed else obj

    return transform


def drop_managed_fields() -> Transform:
    """Drop ``metadata.managedFields`` and the last-applied-configuration annotation."""
    return drop_fields(MANAGED_FIELDS, LAST_APPLIED)
