"""Entry point named in the design: the simulator lives in :mod:`kfast.simulator`."""

from __future__ import annotations

from kfast.simulator import WATCH_FAULTS, Churn, RequestRecord, Simulator

__all__ = ["Simulator", "Churn", "RequestRecord", "WATCH_FAULTS"]
