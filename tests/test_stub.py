"""`_native.pyi` is a tested contract: mypy's stubtest compares it with the compiled module."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ALLOWLIST = Path(__file__).with_name("stubtest_allowlist.txt")


def test_native_stub_matches_module() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "kfast._native", "--allowlist", str(ALLOWLIST)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
