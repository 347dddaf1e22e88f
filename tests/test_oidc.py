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


# -- refreshed tokens written back to the kubeconfig that declared the user -----------------


def _two_file_kubeconfig(tmp_path: Path, issuer: Issuer) -> tuple[Path, Path]:
    first = tmp_path / "main.yaml"
    first.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c", "preferences": {"colors": True},
        "clusters": [{"name": "k", "cluster": {"server": "http://127.0.0.1:1"}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "alice"}}],
        "users": [{"name": "bob", "user": {"token": "bob-token"}}]}))
    users = tmp_path / "users.yaml"
    users.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "users": [{"name": "carol", "user": {"token": "carol-token"}},
                  {"name": "alice", "user": {"auth-provider": {"name": "oidc", "config": {
                      "id-token": jwt(time.time() - 60), "client-id": "kubectl", "idp-issuer-url": issuer.url,
                      "refresh-token": "refresh-1", "client-secret": "shh"}}}}],
        "extensions": [{"name": "keep-me", "extension": {"a": 1}}]}))
    users.chmod(0o600)
    return first, users


def test_refreshed_tokens_are_written_to_the_file_that_declared_the_user(tmp_path: Path, issuer: Issuer) -> None:
    import os

    from kfast._config import load_kubeconfig

    first, users = _two_file_kubeconfig(tmp_path, issuer)
    first_bytes = first.read_bytes()
    before = yaml.safe_load(users.read_text())
    cfg = load_kubeconfig([first, users])
    token = bearer(cfg.auth()).removeprefix("Bearer ")
    assert first.read_bytes() == first_bytes  # the context's file is not the user's
    after = yaml.safe_load(users.read_text())
    alice = after["users"][1]["user"]["auth-provider"]["config"]
    assert alice["id-token"] == token and alice["refresh-token"] == "refresh-2"
    # everything else is kept: other users, the other config keys, the extensions
    before["users"][1]["user"]["auth-provider"]["config"].update({"id-token": token, "refresh-token": "refresh-2"})
    assert after == before
    assert (users.stat().st_mode & 0o777) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["main.yaml", "users.yaml"]  # no lock or temp file left
    # The next process starts from the rotated refresh token, which the issuer accepts.
    again = load_kubeconfig([first, users])
    assert bearer(again.auth()) == f"Bearer {token}"  # still valid: no refresh
    auth = again.auth()
    assert isinstance(auth, OIDCAuth)
    assert auth.provider.get(force=True) != token  # as after a 401
    assert [g["refresh_token"] for g in issuer.grants] == ["refresh-1", "refresh-2"]
    assert yaml.safe_load(users.read_text())["users"][1]["user"]["auth-provider"]["config"]["refresh-token"] == "refresh-3"


def test_persist_auth_false_never_writes(tmp_path: Path, issuer: Issuer) -> None:
    from kfast._config import load_kubeconfig

    first, users = _two_file_kubeconfig(tmp_path, issuer)
    snapshot = users.read_bytes()
    cfg = load_kubeconfig([first, users], persist_auth=False)
    assert bearer(cfg.auth()).startswith("Bearer ") and len(issuer.grants) == 1
    assert users.read_bytes() == snapshot
    kc = tmp_path / "single"
    kc.mkdir()
    path = kubeconfig(kc, {"id-token": jwt(time.time() - 60), "client-id": "kubectl",
                           "idp-issuer-url": issuer.url, "refresh-token": "refresh-2"})
    snapshot = path.read_bytes()
    bearer(load_config(path, persist_auth=False).auth())
    assert path.read_bytes() == snapshot


def test_a_locked_kubeconfig_is_left_alone_and_the_request_goes_on(
        tmp_path: Path, issuer: Issuer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import kfast._kubeconfig

    monkeypatch.setattr(kfast._kubeconfig, "LOCK_WAIT_SECONDS", 0.2)
    path = kubeconfig(tmp_path, {"id-token": jwt(time.time() - 60), "client-id": "kubectl",
                                 "idp-issuer-url": issuer.url, "refresh-token": "refresh-1"})
    snapshot = path.read_bytes()
    (tmp_path / "config.lock").write_text("")  # kubectl (client-go) is writing it
    token = bearer(load_config(path).auth()).removeprefix("Bearer ")
    assert json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "==")).get("sub") == "gen-1"
    assert path.read_bytes() == snapshot
    msgs = [r.getMessage() for r in caplog.records if r.name == "kfast.auth"]
    assert len(msgs) == 1 and "not written back" in msgs[0] and "config.lock" in msgs[0]
    assert token not in msgs[0] and "refresh-2" not in msgs[0]


def test_a_symlinked_kubeconfig_keeps_its_link(tmp_path: Path, issuer: Issuer) -> None:
    real = tmp_path / "dotfiles" / "kubeconfig"
    real.parent.mkdir()
    kubeconfig(real.parent, {"id-token": jwt(time.time() - 60), "client-id": "kubectl",
                             "idp-issuer-url": issuer.url, "refresh-token": "refresh-1"}).rename(real)
    link = tmp_path / "config"
    link.symlink_to(real)
    bearer(load_config(link).auth())
    assert link.is_symlink() and link.resolve() == real
    assert yaml.safe_load(real.read_text())["users"][0]["user"]["auth-provider"]["config"]["refresh-token"] == "refresh-2"


def test_async_client_refreshes_off_the_loop_and_persists(tmp_path: Path, issuer: Issuer) -> None:
    import asyncio
    import threading

    from kfast import AsyncClient

    path = kubeconfig(tmp_path, {"id-token": jwt(time.time() - 60), "client-id": "kubectl",
                                 "idp-issuer-url": issuer.url, "refresh-token": "refresh-1"})
    cfg = load_config(path)
    seen: list[str] = []
    refresh_threads: list[str] = []
    auth = cfg.auth()
    assert isinstance(auth, OIDCAuth)
    real_get = auth.provider.get

    def recording_get(*, force: bool = False) -> str:
        refresh_threads.append(threading.current_thread().name)
        return real_get(force=force)

    auth.provider.get = recording_get  # type: ignore[method-assign]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(401 if len(seen) == 1 else 200, json={"kind": "Status"})

    async def main() -> Any:
        async with AsyncClient(cfg, transport=httpx.MockTransport(handler)) as c:
            return await c.get("/api"), threading.current_thread().name

    body, loop_thread = asyncio.run(main())
    assert body == {"kind": "Status"} and len(seen) == 2 and seen[0] != seen[1]  # refreshed again on 401
    assert refresh_threads and loop_thread not in refresh_threads  # the issuer was called off the loop
    stored = yaml.safe_load(path.read_text())["users"][0]["user"]["auth-provider"]["config"]
    assert f"Bearer {stored['id-token']}" == seen[1] and stored["refresh-token"] == "refresh-3"
