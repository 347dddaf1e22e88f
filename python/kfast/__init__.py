"""kfast: a Kubernetes client for Python whose hot path is Rust."""

from __future__ import annotations

from kfast import errors
from kfast._native import __version__

__all__ = ["errors", "__version__"]
