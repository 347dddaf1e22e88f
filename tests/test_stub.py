"""`_native.pyi` is a tested contract: mypy's stubtest compares it with the compiled module."""

from __future__ import annotations

import subprocess
import sys


def test_native_stub_matches_module() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "kfast._native", "--ignore-missing-stub"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
