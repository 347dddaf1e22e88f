"""The ``oidc`` auth-provider: send the id-token; refresh it through the issuer when it
expires (or the server answers 401) and a refresh-token is present.

The token endpoint is discovered from ``<idp-issuer-url>/.well-known/openid-configuration``
and called with ``grant_type=refresh_token`` (client id and secret in the form, as the
kubeconfig carries them). New tokens are used at once and, as kubectl does, written back to
the kubeconfig file that declared the user (``OIDCConfig.persist``, set by the kubeconfig
loader unless ``persist_auth=False``): issuers that rotate refresh tokens revoke the old one, so
a token kept only in memory would leave kubectl, and the next run, with a dead one. A failed
write is logged and never fails the request.
"""

from __future__ import annotations

import base64
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from kfast.errors import AuthError, ConfigError

__all__ = ["OIDCConfig", "OIDCProvider", "jwt_expiry"]

log = logging.getLogger("kfast.auth")

EXPIRY_MARGIN_SECONDS = 10.0
HTTP_TIMEOUT = 30.0


@dataclass(frozen=True)
class OIDCConfig:
    client_id: str
    issuer_url: str = ""
    id_token: str = field(default="", repr=False)
    refresh_token: str = field(default="", repr=False)
    client_secret: str = field(default="", repr=False)
    ca_pem: bytes | None = None
    extra_scopes: tuple[str, ...] = ()
    # Called with {"id-token": ..., "refresh-token": ...} after each refresh to store them
    # where they came from (the kubeconfig loader sets it); None keeps them in memory only.
    persist: Callable[[dict[str, str]], None] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def parse(cls, provider: Any, where: str, ca_pem: bytes | None) -> OIDCConfig:
        if not isinstance(provider, dict):
            raise ConfigError(f"{where}.auth-provider must be a mapping")
        name = provider.get("name")
        if name != "oidc":
            raise ConfigError(f"{where}.auth-provider {name!r} is not supported (only 'oidc'; use an exec plugin)")
        cfg = provider.get("config") or {}
        if not isinstance(cfg, dict):
            raise ConfigError(f"{where}.auth-provider.config must be a mapping")
        if not cfg.get("id-token") and not cfg.get("refresh-token"):
            raise ConfigError(f"{where}.auth-provider.config needs an id-token or a refresh-token")
        if cfg.get("refresh-token") and not (cfg.get("idp-issuer-url") and cfg.get("client-id")):
            raise ConfigError(f"{where}.auth-provider.config: refresh-token needs idp-issuer-url and client-id")
        scopes = str(cfg.get("extra-scopes") or "")
        return cls(
            client_id=str(cfg.get("client-id") or ""),
            issuer_url=str(cfg.get("idp-issuer-url") or "").rstrip("/"),
            id_token=str(cfg.get("id-token") or ""),
            refresh_token=str(cfg.get("refresh-token") or ""),
            client_secret=str(cfg.get("client-secret") or ""),
            ca_pem=ca_pem,
            extra_scopes=tuple(s for s in scopes.split(",") if s),
        )


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (unverified: the API server verifies it), or None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        exp = json.loads(payload).get("exp")
        return float(exp) if exp is not None else None
    except (ValueError, AttributeError, TypeError):
        return None


class OIDCProvider:
    def __init__(self, config: OIDCConfig) -> None:
        self.config = config
        self._id_token = config.id_token
        self._refresh_token = config.refresh_token
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OIDCProvider(issuer={self.config.issuer_url!r}, client_id={self.config.client_id!r})"

    @property
    def can_refresh(self) -> bool:
        return bool(self._refresh_token)

    def cached(self) -> str | None:
        tok = self._id_token
        if not tok:
            return None
        exp = jwt_expiry(tok)
        if exp is not None and time.time() >= exp - EXPIRY_MARGIN_SECONDS and self.can_refresh:
            return None
        return tok

    def get(self, *, force: bool = False) -> str:
        with self._lock:
            if not force:
                tok = self.cached()
                if tok:
                    return tok
            if not self.can_refresh:
                if self._id_token:
                    return self._id_token  # nothing to refresh with; let the server judge it
                raise AuthError(f"oidc: no id-token and no refresh-token for {self.config.issuer_url}")
            self._refresh()
            return self._id_token

    def _verify(self) -> ssl.SSLContext | bool:
        if self.config.ca_pem:
            return ssl.create_default_context(cadata=self.config.ca_pem.decode("ascii", "replace"))
        return True

    def _refresh(self) -> None:
        c = self.config
        issuer = c.issuer_url
        try:
            with httpx.Client(verify=self._verify(), timeout=HTTP_TIMEOUT) as http:
                disc = http.get(f"{issuer}/.well-known/openid-configuration")
                if disc.status_code != 200:
                    raise AuthError(f"oidc: discovery at {issuer} answered {disc.status_code}")
                endpoint = _json(disc, "discovery").get("token_endpoint")
                if not endpoint:
                    raise AuthError(f"oidc: {issuer} discovery document has no token_endpoint")
                form = {"grant_type": "refresh_token", "refresh_token": self._refresh_token,
                        "client_id": c.client_id}
                if c.client_secret:
                    form["client_secret"] = c.client_secret
                if c.extra_scopes:
                    form["scope"] = " ".join(("openid", *c.extra_scopes))
                resp = http.post(str(endpoint), data=form)
        except httpx.HTTPError as e:
            raise AuthError(f"oidc: cannot reach issuer {issuer}: {type(e).__name__}") from e
        body = _json(resp, "token endpoint")
        if resp.status_code != 200:
            # error/error_description are OAuth2's public fields; never echo the whole body.
            raise AuthError(f"oidc: refresh refused by {issuer} ({resp.status_code}): "
                            f"{body.get('error', '')} {body.get('error_description', '')}".rstrip())
        id_token = body.get("id_token")
        if not id_token:
            raise AuthError(f"oidc: token endpoint of {issuer} returned no id_token")
        self._id_token = str(id_token)
        if body.get("refresh_token"):
            self._refresh_token = str(body["refresh_token"])
        self._persist()

    def _persist(self) -> None:
        save = self.config.persist
        if save is None:
            return
        try:
            save({"id-token": self._id_token, "refresh-token": self._refresh_token})
        except Exception as e:  # noqa: BLE001 - storing is a courtesy; the request goes on
            log.warning("oidc: the refreshed tokens were not written back to the kubeconfig "
                        "(%s: %s); they are used from memory", type(e).__name__, e)


def _json(resp: httpx.Response, what: str) -> dict[str, Any]:
    try:
        doc = resp.json()
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        if resp.status_code != 200:
            return {}
        raise AuthError(f"oidc: {what} at {resp.request.url} did not answer JSON")
    return doc
