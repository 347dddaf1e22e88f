from __future__ import annotations

from pathlib import Path

import pytest

from _pki import Pki, _make_pki


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
