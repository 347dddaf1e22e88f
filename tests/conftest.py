from __future__ import annotations

from pathlib import Path

import pytest

import _fake_native
from _pki import Pki, _make_pki

# Until the Rust store/decoder land on this branch, the Python side runs against a pure-Python
# model of the same contract; the report header says which.
FAKED = _fake_native.install()


def pytest_report_header() -> str:
    return f"kfast._native faked in Python: {', '.join(FAKED) or 'nothing (all native)'}"


@pytest.fixture(scope="session")
def pki() -> Pki:
    return _make_pki()


@pytest.fixture()
def pki_files(pki: Pki, tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name in ("ca_pem", "server_cert_pem", "server_key_pem", "client_cert_pem", "client_key_pem"):
        p = tmp_path / f"{name}.pem"
        p.write_bytes(getattr(pki, name))
        out[name] = p
    return out
