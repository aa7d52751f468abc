"""Named servers and their secrets. A server's settings (URL or host and AE
titles, the user name, the kind of authentication) live in a JSON file in the
user's data folder; its password or token never does: it comes from the OS
keyring where one works, else from an environment variable
(MAMMODESK_SECRET_<NAME>), and is never written to settings or logs."""

from __future__ import annotations

import ipaddress
import json
import os
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from urllib.parse import urlparse

from mammodesk.storage import data_dir, write_atomic

KEYRING_SERVICE = "MammoDesk"
KINDS = ("dicomweb", "dimse")
AUTHS = ("none", "basic", "bearer")


class ServerConfigError(ValueError):
    """A server's settings are unusable; the message says which and how to fix it."""


@dataclass(frozen=True)
class ServerConfig:
    name: str
    kind: str = "dicomweb"          # dicomweb | dimse
    url: str = ""                   # DICOMweb base URL, e.g. https://pacs.example/dicom-web
    auth: str = "none"              # none | basic | bearer
    username: str = ""
    host: str = ""                  # DIMSE
    port: int = 104
    called_ae: str = "ANY-SCP"
    calling_ae: str = "MAMMODESK"
    allow_plain_http: bool = False  # plain HTTP to a host that is not this machine: only when asked
    timeout_s: float = 30.0
    extra: dict = field(default_factory=dict)

    def check(self) -> "ServerConfig":
        if not self.name.strip():
            raise ServerConfigError("a server needs a name")
        if self.kind not in KINDS:
            raise ServerConfigError(f"server kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "dicomweb":
            parsed = urlparse(self.url)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise ServerConfigError(f"{self.name}: {self.url!r} is not an http(s) URL")
            if parsed.scheme == "http" and not is_loopback(parsed.hostname) and not self.allow_plain_http:
                raise ServerConfigError(
                    f"{self.name}: plain HTTP to {parsed.hostname} would send images and passwords unencrypted; use "
                    "https, or allow plain HTTP for this server explicitly")
            if self.auth not in AUTHS:
                raise ServerConfigError(f"{self.name}: authentication must be one of {AUTHS}")
        else:
            if not self.host or not 0 < int(self.port) < 65536:
                raise ServerConfigError(f"{self.name}: a DIMSE server needs a host and a port (1-65535)")
            for title in (self.called_ae, self.calling_ae):
                if not 0 < len(title) <= 16 or "\\" in title:
                    raise ServerConfigError(f"{self.name}: AE title {title!r} must be 1-16 characters")
        return self

    def public(self) -> dict:
        """What may be stored and shown: everything but secrets (which this object never holds)."""
        return asdict(self)


def is_loopback(host: str) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def secret_variable(name: str) -> str:
    return "MAMMODESK_SECRET_" + re.sub(r"[^A-Z0-9]", "_", name.upper())


def get_secret(name: str) -> str | None:
    """The server's password or token: the environment variable first (scripts, CI), then the keyring."""
    value = os.environ.get(secret_variable(name))
    if value:
        return value
    keyring = _keyring()
    if keyring is None:
        return None
    try:
        return keyring.get_password(KEYRING_SERVICE, name)
    except Exception:  # noqa: BLE001 - a broken keyring means: no stored secret
        return None


def set_secret(name: str, value: str) -> None:
    keyring = _keyring()
    if keyring is None:
        raise ServerConfigError(f"no usable OS keyring on this system: set {secret_variable(name)} in the "
                                "environment instead (the password is never written to MammoDesk's settings)")
    keyring.set_password(KEYRING_SERVICE, name, value)


def _keyring():
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return None
    backend = keyring.get_keyring()
    return None if isinstance(backend, fail.Keyring) else keyring


class ServerStore:
    """The named servers, in `servers.json` of the user data folder (no secrets in it)."""

    def __init__(self, path: Path | None = None):
        self.path = path or data_dir() / "servers.json"

    def load(self) -> list[ServerConfig]:
        if not self.path.exists():
            return []
        try:
            items = json.loads(self.path.read_text(encoding="utf-8"))
            return [ServerConfig(**item) for item in items]
        except (OSError, ValueError, TypeError) as exc:
            raise ServerConfigError(f"{self.path} cannot be read ({exc}); fix or delete it") from exc

    def save(self, servers: list[ServerConfig]) -> None:
        write_atomic(self.path, json.dumps([s.check().public() for s in servers], indent=2).encode("utf-8"))

    def find(self, name: str) -> ServerConfig:
        for server in self.load():
            if server.name == name:
                return server
        raise ServerConfigError(f"no server named {name!r} (Servers... in the File menu adds one)")


def from_url(url: str, **options) -> ServerConfig:
    """A server given on the command line: a DICOMweb URL, or dimse://AET@host:port."""
    parsed = urlparse(url)
    if parsed.scheme == "dimse":
        return ServerConfig(name=options.pop("name", parsed.hostname or "server"), kind="dimse",
                            host=parsed.hostname or "", port=parsed.port or 104,
                            called_ae=parsed.username or "ANY-SCP", **options).check()
    return replace(ServerConfig(name=options.pop("name", parsed.hostname or "server"), url=url.rstrip("/")),
                   **options).check()
