"""Where a remote app-server listens, and the token that lets us in.

Parsed once, before anything connects: a bad URL is an argument error, and
the form we print (``Endpoint.url``) never carries credentials.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidArgumentError

__all__ = ["DAEMON_SOCKET", "Endpoint", "Secret", "default_daemon_socket", "parse_endpoint"]

#: Where ``codex app-server --listen unix://`` and ``codex app-server daemon`` listen,
#: relative to CODEX_HOME.
DAEMON_SOCKET = Path("app-server-control") / "app-server-control.sock"


@dataclass(frozen=True)
class Endpoint:
    """A parsed server address. ``url`` is what users see: it never carries credentials."""

    url: str
    host: str
    port: int
    secure: bool
    resource: str
    unix_path: str | None = None


def default_daemon_socket(environ: Mapping[str, str] | None = None) -> Path:
    """``$CODEX_HOME/app-server-control/app-server-control.sock`` (``~/.codex`` by default)."""
    env = os.environ if environ is None else environ
    home = env.get("CODEX_HOME") or os.path.join(os.path.expanduser("~"), ".codex")
    return Path(home) / DAEMON_SOCKET


def parse_endpoint(url: str, *, environ: Mapping[str, str] | None = None) -> Endpoint:
    """Check a server URL: ``ws://HOST:PORT``, ``wss://…`` or ``unix://[PATH]``.

    ``unix://`` alone means codex's default socket (:func:`default_daemon_socket`).
    Credentials in the URL are refused: they would show wherever the URL is shown.
    """
    if not isinstance(url, str) or not url.strip():
        raise InvalidArgumentError(
            f"url must be a non-empty string like ws://HOST:PORT, not {url!r}"
        )
    url = url.strip()
    if url.startswith("unix://"):
        raw = url[len("unix://") :]
        path = Path(raw).expanduser() if raw else default_daemon_socket(environ)
        if not path.is_absolute():
            path = Path.cwd() / path
        return Endpoint(f"unix://{path}", "localhost", 80, False, "/", unix_path=str(path))
    from websockets.exceptions import InvalidURI  # websockets loads only when a URL is used
    from websockets.uri import parse_uri

    try:
        parsed = parse_uri(url)
    except InvalidURI:
        raise InvalidArgumentError(
            f"{_shown(url)} is not a server URL: use ws://HOST:PORT (the address "
            "`codex app-server --listen` prints), wss://HOST[:PORT] behind a TLS proxy, "
            "or unix://PATH"
        ) from None
    if parsed.user_info is not None:
        raise InvalidArgumentError(
            "put the token in token= or token_file= (or $CODEX_APP_SERVER_TOKEN_FILE), "
            "not in the URL: a URL is shown in messages and notebooks"
        )
    scheme = "wss" if parsed.secure else "ws"
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    shown_path = parsed.path if parsed.path != "/" else ""
    return Endpoint(
        f"{scheme}://{host}:{parsed.port}{shown_path}",
        parsed.host,
        parsed.port,
        parsed.secure,
        parsed.resource_name,
    )


def _shown(url: str) -> str:
    """A URL as we may print it: without user info or query."""
    head, sep, rest = url.partition("://")
    if not sep:
        return repr(url[:80])
    authority, slash, path = rest.partition("/")
    authority = authority.rpartition("@")[2]
    return f"{head}://{authority}{slash}{path.partition('?')[0]}"


class Secret:
    """A token. Its ``repr`` hides it, so no dump of an object holding it shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<token hidden>"

    __str__ = __repr__
