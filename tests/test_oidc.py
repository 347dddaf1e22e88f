"""The oidc auth-provider against a tiny OpenID issuer on a loopback port."""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kfast import errors, load_config
from kfast._auth import OIDCAuth, authorize
from kfast._oidc import jwt_expiry


def jwt(exp: float, sub: str = "alice") -> str:
    def part(d: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part({'sub': sub, 'exp': int(exp)})}.sig"


class Issuer:
    """Discovery document plus a token endpoint that trades refresh tokens for id tokens."""

    def __init__(self) -> None:
        self.grants: list[dict[str, str]] = []
        self.refuse = False
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/realm/.well-known/openid-configuration":
                    self._json(200, {"issuer": issuer.url, "token_endpoint": issuer.url + "/token"})
                else:
                    self._json(404, {})

            def do_POST(self) -> None:
                form = dict(urllib.parse.parse_qsl(self.rfile.read(int(self.headers["Content-Length"])).decode()))
                issuer.grants.append(form)
                if issuer.refuse or form.get("refresh_token") != f"refresh-{len(issuer.grants)}":
                    self._json(400, {"error": "invalid_grant", "error_description": "token revoked"})
                    return
                self._json(200, {"id_token": jwt(time.time() + 3600, f"gen-{len(issuer.grants)}"),
                                 "refresh_token": f"refresh-{len(issuer.grants) + 1}"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/realm"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    i = Issuer()
    yield i
    i.close()


def kubeconfig(tmp_path: Path, provider_config: dict[str, Any], name: str = "oidc") -> Path:
    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": "http://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"auth-provider": {"name": name, "config": provider_config}}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
    }
    p = tmp_path / "config"
    p.write_text(yaml.safe_dump(doc))
    return p


def bearer(auth: Any) -> str:
    return str(authorize(auth, httpx.Request("GET", "http://127.0.0.1:1/api")).headers["Authorization"])


def test_valid_id_token_is_sent_as_is(tmp_path: Path, issuer: Issuer) -> None:
    tok = jwt(time.time() + 3600)
    cfg = load_config(kubeconfig(tmp_path, {"id-token": tok, "client-id": "kubectl", "idp-issuer-url": issuer.url,
                                            "refresh-token": "refresh-1", "client-secret": "shh"}))
    assert bearer(cfg.auth()) == f"Bearer {tok}" and issuer.grants == []
    assert tok not in repr(cfg) and "shh" not in repr(cfg) and tok not in repr(cfg.auth())


def test_expired_id_token_is_refreshed_through_discovery(tmp_path: Path, issuer: Issuer) -> None:
    cfg = load_config(kubeconfig(tmp_path, {"id-token": jwt(time.time() - 60), "client-id": "kubectl",
                                            "client-secret": "shh", "idp-issuer-url": issuer.url,
                                            "refresh-token": "refresh-1", "extra-scopes": "groups,email"}))
    auth = cfg.auth()
    assert isinstance(auth, OIDCAuth)
    got = bearer(auth).removeprefix("Bearer ")
    assert json.loads(base64.urlsafe_b64decode(got.split(".")[1] + "==")).get("sub") == "gen-1"
    assert issuer.grants == [{"grant_type": "refresh_token", "refresh_token": "refresh-1", "client_id": "kubectl",
                              "client_secret": "shh", "scope": "openid groups email"}]
    assert bearer(auth) == f"Bearer {got}" and len(issuer.grants) == 1  # fresh now: no second refresh


def test_refresh_on_401_uses_the_rotated_refresh_token(tmp_path: Path, issuer: Issuer) -> None:
    cfg = load_config(kubeconfig(tmp_path, {"id-token": jwt(time.time() - 60), "client-id": "kubectl",
                                            "idp-issuer-url": issuer.url, "refresh-token": "refresh-1"}))
    first = bearer(cfg.auth())
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(401 if len(seen) == 1 else 200)

    with httpx.Client(transport=httpx.MockTransport(handler), auth=cfg.auth()) as c:
        assert c.get("http://h/").status_code == 200
    assert seen[0] == first and seen[1] != first
    assert issuer.grants[1]["refresh_token"] == "refresh-2"


def test_refused_refresh_is_an_auth_error(tmp_path: Path, issuer: Issuer) -> None:
    issuer.refuse = True
    cfg = load_config(kubeconfig(tmp_path, {"client-id": "kubectl", "idp-issuer-url": issuer.url,
                                            "refresh-token": "refresh-1"}))
    with pytest.raises(errors.AuthError) as ei:
        bearer(cfg.auth())
    assert "invalid_grant" in str(ei.value) and "refresh-1" not in str(ei.value)


def test_unreachable_issuer(tmp_path: Path) -> None:
    cfg = load_config(kubeconfig(tmp_path, {"client-id": "k", "idp-issuer-url": "http://127.0.0.1:9",
                                            "refresh-token": "r"}))
    with pytest.raises(errors.AuthError, match="cannot reach issuer") as ei:
        bearer(cfg.auth())
    assert isinstance(ei.value.__cause__, httpx.HTTPError)


@pytest.mark.parametrize(("name", "cfg", "needle"), [
    ("gcp", {"id-token": "x"}, "not supported"),
    ("oidc", {}, "id-token or a refresh-token"),
    ("oidc", {"refresh-token": "r"}, "idp-issuer-url"),
])
def test_bad_auth_provider(tmp_path: Path, name: str, cfg: dict[str, Any], needle: str) -> None:
    with pytest.raises(errors.ConfigError, match=needle):
        load_config(kubeconfig(tmp_path, cfg, name))


def test_jwt_expiry() -> None:
    assert jwt_expiry(jwt(1234)) == 1234.0
    assert jwt_expiry("not-a-jwt") is None and jwt_expiry("a.!!!.c") is None
