"""Throwaway certificates and credentials for a test kube-apiserver.

One CA signs everything: the serving certificate (SANs 127.0.0.1 and localhost, so clients
verify the name properly), and one client certificate per user, with the user name in the
subject's CN and the groups in its O attributes, which is how kube-apiserver's x509
authenticator maps a certificate to a user. Token users go to a ``--token-auth-file`` CSV.
ECDSA P-256 keys keep generation fast on a loaded machine.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["User", "Pki", "ADMIN", "USER", "TOKEN_USER", "TOKEN_ADMIN", "TOKEN_ADMIN_GROUP"]

# Names of the users every test cluster has; tests refer to them through these constants.
ADMIN = "kfast-admin"  # client certificate, group system:masters (RBAC and APF exempt)
USER = "kfast-user"  # client certificate, no RBAC bindings at all
TOKEN_USER = "kfast-token-user"  # bearer token, no RBAC bindings
TOKEN_ADMIN = "kfast-token-admin"  # bearer token, cluster-admin through TOKEN_ADMIN_GROUP
# Bound to cluster-admin by the cluster at start-up. Unlike system:masters it is an ordinary
# RBAC subject, so it is still subject to API Priority and Fairness.
TOKEN_ADMIN_GROUP = "kfast:admins"
USERS_GROUP = "kfast:users"

_VALIDITY = dt.timedelta(days=7)
# Backdate certificates so a slightly skewed clock does not make them "not yet valid".
_BACKDATE = dt.timedelta(hours=1)


@dataclass(frozen=True)
class User:
    """A user the test cluster authenticates: by client certificate, by token, or both."""

    name: str
    groups: tuple[str, ...]
    cert_file: Path | None = None
    key_file: Path | None = None
    token: str | None = None

    @property
    def kind(self) -> str:
        return "cert" if self.cert_file is not None else "token"


@dataclass(frozen=True)
class Pki:
    """Paths of everything :func:`create_pki` wrote. Shared by every cluster made from it."""

    directory: Path
    ca_file: Path
    serving_cert_file: Path
    serving_key_file: Path
    sa_key_file: Path  # private key: --service-account-signing-key-file
    sa_pub_file: Path  # public key: --service-account-key-file
    token_file: Path  # --token-auth-file
    users: dict[str, User]


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    # "EC PRIVATE KEY" is the form every Go key parser in kube-apiserver accepts.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _name(common_name: str, organizations: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


class _Authority:
    def __init__(self, common_name: str) -> None:
        self.key = _key()
        now = dt.datetime.now(dt.timezone.utc)
        name = _name(common_name)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )

    def issue(
        self,
        common_name: str,
        *,
        organizations: tuple[str, ...] = (),
        server: bool = False,
        hosts: tuple[str, ...] = (),
    ) -> tuple[bytes, bytes]:
        """Return (certificate PEM, key PEM) for a client or, with ``server``, a server."""
        key = _key()
        now = dt.datetime.now(dt.timezone.utc)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name, organizations))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if hosts:
            names: list[x509.GeneralName] = []
            for host in hosts:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    names.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _write(path: Path, data: bytes, private: bool = False) -> Path:
    path.write_bytes(data)
    if private:
        path.chmod(0o600)
    return path


def _csv_field(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def create_pki(directory: Path) -> Pki:
    """Write a CA, serving certificate, service-account key, users and token file."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    ca = _Authority("kfast-test-ca")
    ca_file = _write(directory / "ca.crt", ca.cert.public_bytes(serialization.Encoding.PEM))

    cert, key = ca.issue(
        "kube-apiserver", server=True, hosts=("127.0.0.1", "localhost", "::1")
    )
    serving_cert = _write(directory / "apiserver.crt", cert)
    serving_key = _write(directory / "apiserver.key", key, private=True)

    sa_key = _key()
    sa_key_file = _write(directory / "sa.key", _key_pem(sa_key), private=True)
    sa_pub_file = _write(
        directory / "sa.pub",
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )

    users: dict[str, User] = {}
    for name, groups in ((ADMIN, ("system:masters",)), (USER, (USERS_GROUP,))):
        cert, key = ca.issue(name, organizations=groups)
        users[name] = User(
            name,
            groups,
            cert_file=_write(directory / f"{name}.crt", cert),
            key_file=_write(directory / f"{name}.key", key, private=True),
        )
    lines = []
    for name, groups in ((TOKEN_USER, (USERS_GROUP,)), (TOKEN_ADMIN, (TOKEN_ADMIN_GROUP,))):
        token = secrets.token_urlsafe(24)
        users[name] = User(name, groups, token=token)
        # token,user,uid,"group1,group2"
        lines.append(f"{token},{name},{name},{_csv_field(','.join(groups))}\n")
    token_file = _write(directory / "tokens.csv", "".join(lines).encode(), private=True)

    return Pki(
        directory=directory,
        ca_file=ca_file,
        serving_cert_file=serving_cert,
        serving_key_file=serving_key,
        sa_key_file=sa_key_file,
        sa_pub_file=sa_pub_file,
        token_file=token_file,
        users=users,
    )
