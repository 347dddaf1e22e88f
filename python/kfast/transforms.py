"""Transforms for :class:`kfast.SharedIndexInformer` (``transform=``): change an object
before it is cached, typically to drop fields a controller never reads.

The built-in transforms are native (:class:`ObjectTransform`): :func:`drop_managed_fields`,
:func:`drop_last_applied` and :func:`drop_fields` cut their fields out of each object's JSON
bytes in Rust, as the object is decoded from the watch (or taken from a LIST page), before
it is queued or cached. The rest of the object stays byte for byte what the server sent and
its metadata (name, namespace, labels, owners, index values) stays readable; nothing runs in
Python per event, so the watch keeps its fast path. Combine them with ``+`` or
:func:`combine`::

    transform=transforms.drop_managed_fields() + transforms.drop_fields("status.conditions")

A Python function ``f(StoredObject) -> StoredObject`` is still accepted anywhere a transform
is: that is the slow path (each object is handed to Python, and the watch is read through
the Python event path).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from kfast import _native
from kfast._feed import Transform

__all__ = ["Transform", "ObjectTransform", "drop_fields", "drop_managed_fields", "drop_last_applied",
           "combine", "LAST_APPLIED", "MANAGED_FIELDS"]

ObjectTransform = _native.ObjectTransform

MANAGED_FIELDS: tuple[str, ...] = ("metadata", "managedFields")
LAST_APPLIED: tuple[str, ...] = (
    "metadata", "annotations", "kubectl.kubernetes.io/last-applied-configuration")


def drop_fields(*paths: str | Sequence[str]) -> ObjectTransform:
    """A native transform removing each field path: a dotted string of object keys
    (``"status.conditions"``) or a sequence of keys, for keys that contain dots themselves
    (:data:`LAST_APPLIED`). Objects that have none of the fields are kept as they are (the
    same object, nothing copied). ``metadata`` and its ``name``, ``namespace``, ``uid`` and
    ``resourceVersion`` cannot be dropped (ValueError): the cache runs on them."""
    parts = [p.split(".") if isinstance(p, str) else [str(k) for k in p] for p in paths]
    return _native.ObjectTransform(parts)


def drop_managed_fields() -> ObjectTransform:
    """Drop ``metadata.managedFields`` (server-side apply bookkeeping: often a third of an
    object's bytes, read by almost no controller)."""
    return _native.ObjectTransform([list(MANAGED_FIELDS)])


def drop_last_applied() -> ObjectTransform:
    """Drop the ``kubectl.kubernetes.io/last-applied-configuration`` annotation (a copy of
    the object as last applied by ``kubectl apply``)."""
    return _native.ObjectTransform([list(LAST_APPLIED)])


def combine(*transforms: Transform) -> Transform:
    """One transform applying each in order. Native ones merge into one
    :class:`ObjectTransform` (still the fast path); if any is a Python function the result
    is a Python function (the slow path)."""
    if not transforms:
        raise ValueError("combine() needs at least one transform")
    if all(isinstance(t, _native.ObjectTransform) for t in transforms):
        out = transforms[0]
        for t in transforms[1:]:
            out = out + t  # type: ignore[operator]
        return out
    chain: list[Callable[[_native.StoredObject], _native.StoredObject]] = list(transforms)

    def transform(obj: _native.StoredObject) -> _native.StoredObject:
        for t in chain:
            obj = t(obj)
        return obj

    return transform
