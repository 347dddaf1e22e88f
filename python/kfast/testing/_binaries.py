"""Where the kube-apiserver and etcd binaries live, and building them when they are missing.

``testenv/build.sh`` (in the source tree, not in the wheel) builds both from Go modules into
``~/.cache/kfast/testenv/<version>/``. ``KFAST_TESTENV_BIN`` points at a directory of
ready-made binaries instead and disables building.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["KUBE_VERSION", "BinariesMissing", "Binaries", "cache_dir", "find_build_script",
           "find_binaries"]

KUBE_VERSION = "v1.37.2"


class BinariesMissing(RuntimeError):
    """kube-apiserver or etcd is not built; the message says how to build it."""


class Binaries:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.kube_apiserver = directory / "kube-apiserver"
        self.etcd = directory / "etcd"

    def exist(self) -> bool:
        return all(os.access(p, os.X_OK) for p in (self.kube_apiserver, self.etcd))

    def __repr__(self) -> str:
        return f"Binaries({str(self.directory)!r})"


def cache_dir() -> Path:
    """Mirrors the cache path in testenv/build.sh."""
    root = os.environ.get("KFAST_TESTENV_CACHE")
    if root:
        return Path(root) / KUBE_VERSION
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "kfast" / "testenv" / KUBE_VERSION


def find_build_script() -> Path | None:
    """testenv/build.sh of the source checkout this package is imported from, if any."""
    for parent in Path(__file__).resolve().parents:
        script = parent / "testenv" / "build.sh"
        if script.is_file():
            return script
    return None


def _how_to_build() -> str:
    script = find_build_script()
    where = str(script) if script else "testenv/build.sh (in the kfast source tree)"
    return (
        f"build them with `{where}` (needs Go >= 1.26 and the Go module proxy; about 10-30 "
        f"minutes the first time), or point KFAST_TESTENV_BIN at a directory holding "
        f"kube-apiserver and etcd"
    )


def find_binaries(*, build: bool = False, build_script: Path | None = None) -> Binaries:
    """Locate the binaries; with ``build``, run testenv/build.sh first (a no-op when they
    are already built from the current testenv/go.mod). ``build_script`` defaults to the
    one in the source tree this package was imported from (editable installs only).
    Raises :class:`BinariesMissing`."""
    override = os.environ.get("KFAST_TESTENV_BIN")
    if override:
        bins = Binaries(Path(override))
        if not bins.exist():
            raise BinariesMissing(f"KFAST_TESTENV_BIN={override} lacks kube-apiserver or etcd")
        return bins
    script = build_script if build_script is not None else find_build_script()
    if build and script is not None and shutil.which("go") is not None:
        # The script's progress goes to file descriptor 2 (inherited), not through Python.
        proc = subprocess.run(["bash", str(script)], stdout=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            raise BinariesMissing(
                f"{script} failed with status {proc.returncode} (its output is above)"
            )
        bins = Binaries(Path(proc.stdout.strip().splitlines()[-1]))
        if bins.exist():
            return bins
        raise BinariesMissing(f"{script} printed {bins.directory}, which lacks the binaries")
    bins = Binaries(cache_dir())
    if bins.exist():
        return bins
    reason = "Go is not on PATH" if build and script is not None else "they are not built"
    raise BinariesMissing(
        f"kube-apiserver/etcd {KUBE_VERSION} not found in {bins.directory} ({reason}); "
        + _how_to_build()
    )
