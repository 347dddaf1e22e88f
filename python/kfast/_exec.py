"""Exec credential plugins (``users[].user.exec``): run a command, read an ExecCredential.

The protocol (client.authentication.k8s.io v1 and v1beta1): the plugin gets the request in
``KUBERNETES_EXEC_INFO`` (with the cluster when ``provideClusterInfo`` is set), prints an
ExecCredential on stdout, and exits 0. Its ``status`` carries a bearer token or a client
certificate and key (PEM, not base64), and optionally ``expirationTimestamp``; the result is
reused until then, and fetched again when the server answers 401.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from kfast.errors import AuthError, ConfigError

__all__ = ["ExecConfig", "ExecCredential", "ExecProvider", "API_VERSIONS"]

API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
INTERACTIVE_MODES = ("Never", "IfAvailable", "Always")
# Do not hand out a credential that expires before the request can even arrive.
EXPIRY_MARGIN_SECONDS = 10.0
# The cluster extension a plugin receives as spec.cluster.config (kubeconfig convention).
EXEC_EXTENSION = "client.authentication.k8s.io/exec"
# How long a plugin may run before it is killed (with its process group) and the request
# fails with AuthError. Long enough for a browser login (kubelogin waits up to 180 s for the
# user by default), short enough that a hung plugin cannot stall every request forever.
# client-go has no such limit; ExecConfig.timeout overrides it per config.
DEFAULT_EXEC_TIMEOUT_SECONDS = 300.0


@dataclass(frozen=True)
class ExecConfig:
    """A parsed ``exec`` section; ``command`` is already resolved against its kubeconfig."""

    command: str
    api_version: str
    args: tuple[str, ...] = field(default=(), repr=False)  # may hold secrets (--token=...)
    env: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    interactive_mode: str = "IfAvailable"
    provide_cluster_info: bool = False
    install_hint: str = ""
    cluster_info: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    timeout: float = DEFAULT_EXEC_TIMEOUT_SECONDS  # seconds; see DEFAULT_EXEC_TIMEOUT_SECONDS

    @classmethod
    def parse(cls, spec: Any, where: str, base_dir: str) -> ExecConfig:
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}.exec must be a mapping")
        command = spec.get("command")
        if not command or not isinstance(command, str):
            raise ConfigError(f"{where}.exec.command is missing")
        api_version = str(spec.get("apiVersion") or "")
        if api_version not in API_VERSIONS:
            raise ConfigError(
                f"{where}.exec.apiVersion {api_version!r} is not one of {', '.join(API_VERSIONS)}"
            )
        # v1 made interactiveMode mandatory; v1beta1 defaults it to IfAvailable.
        mode = spec.get("interactiveMode")
        if mode is None and api_version.endswith("/v1"):
            raise ConfigError(f"{where}.exec.interactiveMode is required for {api_version}")
        mode = str(mode or "IfAvailable")
        if mode not in INTERACTIVE_MODES:
            raise ConfigError(f"{where}.exec.interactiveMode {mode!r} is not one of {INTERACTIVE_MODES}")
        args = spec.get("args") or []
        if not isinstance(args, list):
            raise ConfigError(f"{where}.exec.args must be a list")
        env: list[tuple[str, str]] = []
        for i, e in enumerate(spec.get("env") or []):
            if not isinstance(e, dict) or "name" not in e:
                raise ConfigError(f"{where}.exec.env[{i}] needs 'name' and 'value'")
            env.append((str(e["name"]), str(e.get("value", ""))))
        # A bare name is looked up in PATH; a relative path with a separator is relative to
        # the kubeconfig that declared it, like certificate paths.
        if os.sep in command and not os.path.isabs(command):
            command = os.path.normpath(os.path.join(base_dir, command))
        return cls(
            command=command,
            api_version=api_version,
            args=tuple(str(a) for a in args),
            env=tuple(env),
            interactive_mode=mode,
            provide_cluster_info=bool(spec.get("provideClusterInfo", False)),
            install_hint=str(spec.get("installHint") or ""),
        )


@dataclass(frozen=True)
class ExecCredential:
    """What a plugin returned. ``expires_at`` is a ``time.time()`` value or None (no expiry)."""

    token: str | None = field(default=None, repr=False)
    client_cert_pem: bytes | None = None
    client_key_pem: bytes | None = field(default=None, repr=False)
    expires_at: float | None = None

    def fresh(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at - EXPIRY_MARGIN_SECONDS


class ExecProvider:
    """Runs one plugin and caches its credential; thread-safe, one run at a time."""

    def __init__(self, config: ExecConfig) -> None:
        self.config = config
        self._cred: ExecCredential | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ExecProvider(command={self.config.command!r}, api_version={self.config.api_version!r})"

    def cached(self) -> ExecCredential | None:
        """The cached credential if it is still fresh; never runs the plugin."""
        cred = self._cred
        return cred if cred is not None and cred.fresh(time.time()) else None

    def last(self) -> ExecCredential | None:
        """The last credential, fresh or not (its client certificate stays in use until replaced)."""
        return self._cred

    def get(self, *, force: bool = False) -> ExecCredential:
        """The credential, running the plugin if none is cached, it expired, or ``force``."""
        with self._lock:
            cred = self._cred
            if not force and cred is not None and cred.fresh(time.time()):
                return cred
            self._cred = self._run()
            return self._cred

    def _exec_info(self, interactive: bool) -> str:
        spec: dict[str, Any] = {"interactive": interactive}
        if self.config.provide_cluster_info:
            spec["cluster"] = self.config.cluster_info
        return json.dumps({"apiVersion": self.config.api_version, "kind": "ExecCredential", "spec": spec})

    def _run(self) -> ExecCredential:
        c = self.config
        tty = sys.stdin is not None and sys.stdin.isatty()
        interactive = tty and c.interactive_mode != "Never"
        if c.interactive_mode == "Always" and not tty:
            raise AuthError(f"exec plugin {c.command}: interactiveMode Always needs a terminal on stdin")
        env = dict(os.environ)
        env.update(c.env)
        env["KUBERNETES_EXEC_INFO"] = self._exec_info(interactive)
        where = f"exec plugin {c.command}"
        # A non-interactive plugin gets a session of its own, so a timeout kills whatever it
        # started too (a shell script's children would otherwise keep stdout open and the
        # read would never end). An interactive one stays in the terminal's session, where
        # it can prompt; only the plugin itself is killed then.
        own_group = not interactive and os.name == "posix"
        try:
            # An interactive plugin talks to the user on stderr, so it keeps the terminal's;
            # otherwise stderr is captured for the error message.
            proc = subprocess.Popen(
                [c.command, *c.args],
                env=env,
                stdin=None if interactive else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=None if interactive else subprocess.PIPE,
                start_new_session=own_group,
            )
        except OSError as e:
            hint = f"; {c.install_hint.strip()}" if c.install_hint else ""
            raise AuthError(f"exec plugin {c.command} could not be run: {e.strerror or e}{hint}") from e
        try:
            out, err = proc.communicate(timeout=c.timeout)
        except subprocess.TimeoutExpired as e:
            _kill(proc, own_group)
            raise AuthError(f"{where} did not finish within {c.timeout:g} s and was killed "
                            "(ExecConfig.timeout)") from e
        except BaseException:
            _kill(proc, own_group)  # KeyboardInterrupt while waiting: leave no plugin behind
            raise
        stderr = err.decode("utf-8", "replace").strip() if err is not None else "(shown on the terminal)"
        if proc.returncode != 0:
            raise AuthError(f"{where} failed with exit code {proc.returncode}: {stderr or '(no stderr)'}")
        return parse_exec_credential(out, c.api_version, where, stderr)


def _kill(proc: subprocess.Popen[bytes], group: bool) -> None:
    try:
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass
    # Reap it and close its pipes without waiting on descendants that may still hold them.
    proc.wait()
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def parse_exec_credential(stdout: bytes, api_version: str, where: str, stderr: str = "") -> ExecCredential:
    """Validate a plugin's output. Messages never quote stdout: it may hold a token."""
    tail = f"; stderr: {stderr}" if stderr else ""
    try:
        doc = json.loads(stdout)
    except (ValueError, UnicodeDecodeError):
        raise AuthError(f"{where} did not print an ExecCredential (stdout is not JSON, {len(stdout)} bytes){tail}") from None
    if not isinstance(doc, dict) or doc.get("kind") != "ExecCredential":
        raise AuthError(f"{where} did not print an ExecCredential (no kind: ExecCredential){tail}")
    if doc.get("apiVersion") != api_version:
        raise AuthError(f"{where} answered apiVersion {doc.get('apiVersion')!r}, expected {api_version!r}{tail}")
    status = doc.get("status")
    if not isinstance(status, dict):
        raise AuthError(f"{where} printed an ExecCredential without status{tail}")
    token = status.get("token") or None
    cert = status.get("clientCertificateData") or None
    key = status.get("clientKeyData") or None
    if bool(cert) != bool(key):
        raise AuthError(f"{where}: clientCertificateData and clientKeyData must come together{tail}")
    if not token and not cert:
        raise AuthError(f"{where} returned neither a token nor a client certificate{tail}")
    expires = status.get("expirationTimestamp")
    expires_at = None
    if expires:
        try:
            expires_at = parse_rfc3339(str(expires))
        except ValueError:
            raise AuthError(f"{where}: expirationTimestamp {expires!r} is not RFC 3339{tail}") from None
    return ExecCredential(
        token=str(token) if token else None,
        client_cert_pem=str(cert).encode() if cert else None,
        client_key_pem=str(key).encode() if key else None,
        expires_at=expires_at,
    )


def parse_rfc3339(s: str) -> float:
    # fromisoformat before 3.11 does not take "Z".
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00")).timestamp()


def cluster_info(cluster: dict[str, Any], server: str, ca_pem: bytes | None) -> dict[str, Any]:
    """The Cluster object a plugin with provideClusterInfo receives (spec.cluster)."""
    info: dict[str, Any] = {"server": server}
    if ca_pem:
        info["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    for key in ("insecure-skip-tls-verify", "tls-server-name", "proxy-url", "disable-compression"):
        if cluster.get(key) is not None:
            info[key] = cluster[key]
    for ext in cluster.get("extensions") or []:
        if isinstance(ext, dict) and ext.get("name") == EXEC_EXTENSION:
            info["config"] = ext.get("extension")
    return info
