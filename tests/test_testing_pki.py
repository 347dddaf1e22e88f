"""kfast.testing's certificates, token file and kubeconfig, checked without any server."""

from __future__ import annotations

import base64
import csv
import ipaddress
import ssl
from pathlib import Path

import pytest
import yaml

pytest.importorskip("cryptography")

from cryptography import x509  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

from kfast.testing._kubeconfig import context_name, write_kubeconfig  # noqa: E402
from kfast.testing._pki import (  # noqa: E402
    ADMIN, TOKEN_ADMIN, TOKEN_ADMIN_GROUP, TOKEN_USER, USER, USERS_GROUP, create_pki,
)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_serving_certificate_names_loopback(tmp_path: Path) -> None:
    pki = create_pki(tmp_path)
    cert = _cert(pki.serving_cert_file)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.issuer == _cert(pki.ca_file).subject


def test_client_certificates_carry_user_and_groups(tmp_path: Path) -> None:
    pki = create_pki(tmp_path)
    for name, group in ((ADMIN, "system:masters"), (USER, USERS_GROUP)):
        user = pki.users[name]
        assert user.cert_file is not None and user.key_file is not None
        subject = _cert(user.cert_file).subject
        assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == name
        assert [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [
            group
        ]
        # Python's ssl (what httpx uses) accepts the pair and the CA.
        ctx = ssl.create_default_context(cafile=str(pki.ca_file))
        ctx.load_cert_chain(str(user.cert_file), str(user.key_file))
        assert user.key_file.stat().st_mode & 0o077 == 0


def test_token_file_format(tmp_path: Path) -> None:
    pki = create_pki(tmp_path)
    rows = list(csv.reader(pki.token_file.read_text().splitlines()))
    by_user = {row[1]: row for row in rows}
    assert set(by_user) == {TOKEN_USER, TOKEN_ADMIN}
    token, name, uid, groups = by_user[TOKEN_ADMIN]
    assert (token, uid, groups) == (pki.users[TOKEN_ADMIN].token, TOKEN_ADMIN, TOKEN_ADMIN_GROUP)
    assert by_user[TOKEN_USER][3] == USERS_GROUP


def test_kubeconfig_contexts_and_embedded_credentials(tmp_path: Path) -> None:
    pki = create_pki(tmp_path / "pki")
    path = write_kubeconfig(tmp_path / "kubeconfig", cluster="c", server="https://127.0.0.1:1",
                            pki=pki)
    config = yaml.safe_load(path.read_text())
    assert config["current-context"] == "c" == context_name("c", ADMIN)
    users = {u["name"]: u["user"] for u in config["users"]}
    assert base64.b64decode(users[ADMIN]["client-certificate-data"]) == \
        pki.users[ADMIN].cert_file.read_bytes()  # type: ignore[union-attr]
    assert users[TOKEN_USER] == {"token": pki.users[TOKEN_USER].token}
    assert {c["name"] for c in config["contexts"]} == {
        "c", "c-kfast-user", "c-kfast-token-user", "c-kfast-token-admin"
    }
    ca = base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"])
    assert ca == pki.ca_file.read_bytes()
