"""The stub is a tested contract: mypy.stubtest must find nothing wrong with the store
classes (IndexFunc, Indexer, Delta, DeltaFIFO, process_batch). Stub-only type aliases
(DeltaType, IndexFuncLike, Notification) are expected to be absent at runtime; the other
classes in the stub belong to other modules' tests."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

OURS = re.compile(r"^error: kfast\._native\.(IndexFunc|Indexer|Delta|DeltaFIFO|process_batch)\b(?!Like)")


def test_stubtest_is_clean_for_store_classes() -> None:
    pytest.importorskip("mypy")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "kfast._native"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "not checking stubs due to mypy build errors" not in proc.stdout, proc.stdout
    ours = [line for line in proc.stdout.splitlines() if OURS.match(line)]
    assert ours == [], proc.stdout
