"""Choosing the transport: spawn ``codex app-server`` here, or connect to a running one.

``Codex(url=...)`` / ``AsyncCodex(url=...)`` (or ``$CODEX_APP_SERVER_URL`` when
neither ``url=`` nor ``codex_bin=`` is given) connect over WebSocket; anything
else spawns the local binary.  Options that configure a server we spawn
(``codex_home=``, ``config=``, ``env=``, ``cwd=``) are refused for a remote
one, by name, rather than silently ignored: it has its own settings (per
thread: ``thread_start(cwd=..., sandbox=...)``).

The token comes from ``token=``, else ``token_file=``, else
``$CODEX_APP_SERVER_TOKEN``, else ``$CODEX_APP_SERVER_TOKEN_FILE``; a token
file holds the token alone (surrounding whitespace is ignored, as codex does).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
from collections.abc import Mapping
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from ._endpoint import parse_endpoint
from .errors import CodexError, CodexRpcError, IncompatibleServerError, InvalidArgumentError
from .transport import SubprocessTransport, Transport

if TYPE_CHECKING:
    from .transport_ws import WebSocketTransport

__all__ = [
    "TOKEN_ENV",
    "TOKEN_FILE_ENV",
    "URL_ENV",
    "check_initialize",
    "load_token",
    "make_transport",
    "server_url",
]

log = logging.getLogger(__name__)

URL_ENV = "CODEX_APP_SERVER_URL"
TOKEN_ENV = "CODEX_APP_SERVER_TOKEN"
TOKEN_FILE_ENV = "CODEX_APP_SERVER_TOKEN_FILE"


def make_transport(
    *,
    codex_bin: str | os.PathLike[str] | None = None,
    url: str | None = None,
    token: str | None = None,
    token_file: str | os.PathLike[str] | None = None,
    codex_home: str | os.PathLike[str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    config: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Transport:
    """The transport a client's arguments ask for (``environ``: default ``os.environ``)."""
    environ = os.environ if environ is None else environ
    url_source = "url="
    if url is None and codex_bin is None and environ.get(URL_ENV, "").strip():
        url, url_source = environ[URL_ENV], f"${URL_ENV}"
    if url is None:
        if token is not None or token_file is not None:
            given = "token=" if token is not None else "token_file="
            raise InvalidArgumentError(
                f"{given} is for a running app-server: pass url= with it (or set {URL_ENV})"
            )
        return SubprocessTransport(
            codex_bin, config=config, env=env, codex_home=codex_home, cwd=cwd
        )
    if codex_bin is not None:
        raise InvalidArgumentError(
            "pass codex_bin= to spawn a local app-server, or url= to connect to a running "
            "one, not both"
        )
    spawned = {"codex_home": codex_home, "config": config, "env": env, "cwd": cwd}
    spawn_only = [name for name, value in spawned.items() if value is not None]
    endpoint = parse_endpoint(url, environ=environ)
    if spawn_only:
        names = ", ".join(f"{name}=" for name in spawn_only)
        where = f"{endpoint.url}" + (f" (from ${URL_ENV})" if url_source != "url=" else "")
        raise InvalidArgumentError(
            f"{names} configure an app-server this client spawns; the one at {where} runs "
            "with its own settings. Per thread, pass cwd=/sandbox=/... to thread_start(); to "
            "spawn a local server instead, pass codex_bin=."
        )
    secret, token_source = load_token(token, token_file, environ=environ)
    in_clear = endpoint.unix_path is None and not endpoint.secure
    if secret is not None and in_clear and not _is_loopback(endpoint.host):
        log.warning(
            "codex_notebook: the token for %s travels unencrypted over the network; "
            "prefer SSH port forwarding (ws://127.0.0.1:PORT) or wss:// through a TLS proxy",
            endpoint.url,
        )
    from .transport_ws import WebSocketTransport  # websockets loads only when used

    return WebSocketTransport(
        url,
        token=secret,
        url_source=url_source,
        token_source=token_source,
        environ=environ,
    )


def load_token(
    token: str | None,
    token_file: str | os.PathLike[str] | None,
    *,
    environ: Mapping[str, str] | None = None,
) -> tuple[str | None, str]:
    """``(token, where it came from)``; the second part is for messages and never the token."""
    environ = os.environ if environ is None else environ
    if token is not None and token_file is not None:
        raise InvalidArgumentError("pass token= or token_file=, not both")
    if token is not None:
        if not isinstance(token, str) or not token.strip():
            raise InvalidArgumentError("token= must be a non-empty string")
        return token.strip(), "token="
    if token_file is not None:
        return _read_token_file(token_file, "token_file="), f"token_file={os.fspath(token_file)}"
    if environ.get(TOKEN_ENV, "").strip():
        return environ[TOKEN_ENV].strip(), f"${TOKEN_ENV}"
    if environ.get(TOKEN_FILE_ENV, "").strip():
        path = environ[TOKEN_FILE_ENV].strip()
        return _read_token_file(path, f"${TOKEN_FILE_ENV}"), f"${TOKEN_FILE_ENV} ({path})"
    return None, "no token"


def _read_token_file(path: str | os.PathLike[str], source: str) -> str:
    shown = os.fspath(path)
    try:
        with open(os.path.expanduser(shown), encoding="utf-8") as f:
            value = f.read().strip()
    except OSError as exc:
        raise InvalidArgumentError(
            f"cannot read the token file {shown!r} ({source}): {exc.strerror or exc}"
        ) from exc
    except UnicodeDecodeError:
        raise InvalidArgumentError(
            f"the token file {shown!r} ({source}) is not text: it should hold the token alone"
        ) from None
    if not value:
        raise InvalidArgumentError(f"the token file {shown!r} ({source}) is empty")
    return value


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _remote(transport: Transport) -> WebSocketTransport | None:
    """The transport if it is a WebSocket one (without importing websockets otherwise)."""
    module = sys.modules.get(f"{__package__}.transport_ws")
    if module is None:
        return None
    kind: type[WebSocketTransport] = module.WebSocketTransport
    return transport if isinstance(transport, kind) else None


def server_url(transport: Transport) -> str | None:
    """Where turns run: the remote server's URL, or None for a server we spawned."""
    remote = _remote(transport)
    return remote.url if remote is not None else None


def check_initialize(transport: Transport, answer: Future[Any]) -> Future[Any]:
    """For a remote server: the ``initialize`` answer proves it speaks our protocol.

    An error answer (an echo server, another protocol generation) or a result
    that is not codex's (no ``userAgent``) becomes an
    :class:`~codex_notebook.errors.IncompatibleServerError` naming the server.
    A spawned server's answer is returned untouched.
    """
    remote = _remote(transport)
    if remote is None:
        return answer
    url = remote.url
    checked: Future[Any] = Future()

    def settle(done: Future[Any]) -> None:  # runs where the answer is set (reader thread)
        if not checked.set_running_or_notify_cancel():
            return
        if done.cancelled():
            checked.set_exception(CodexError(f"initialize with {url} was cancelled"))
            return
        exc = done.exception()
        if isinstance(exc, CodexRpcError):
            checked.set_exception(
                IncompatibleServerError(
                    f"{url} refused our initialize ({exc.rpc_message}, JSON-RPC error "
                    f"{exc.code}): it is not a codex app-server of the protocol generation this "
                    "client speaks (codex 0.163 or newer). Update one of the two.",
                    url=url,
                )
            )
        elif exc is not None:
            checked.set_exception(exc)
        elif not isinstance(result := done.result(), dict) or not isinstance(
            result.get("userAgent"), str
        ):
            checked.set_exception(
                IncompatibleServerError(
                    f"{url} answered initialize without codex's userAgent: it is not a codex "
                    "app-server of the protocol generation this client speaks.",
                    url=url,
                )
            )
        else:
            checked.set_result(result)

    answer.add_done_callback(settle)
    return checked
