"""The exception tree users catch.

Everything that can go wrong below the public API (``OSError`` from pipes, a
process exiting, a JSON-RPC error object) is translated here, at the boundary,
into one documented hierarchy rooted at :class:`CodexError`.  The original
cause is kept as ``__cause__``.
"""

from __future__ import annotations

import os
import re
from typing import Any

__all__ = [
    "AuthenticationError",
    "BinaryNotFoundError",
    "CodexError",
    "CodexRpcError",
    "CodexTimeoutError",
    "ConnectionLostError",
    "IncompatibleServerError",
    "InvalidArgumentError",
    "InvalidParamsError",
    "InvalidRequestError",
    "MethodNotFoundError",
    "OutputParseError",
    "ProtocolError",
    "RemoteConnectError",
    "ServerOverloadedError",
    "StartupError",
    "TransportClosedError",
    "redact",
]


class CodexError(Exception):
    """Base class of every error raised by codex_notebook."""


class BinaryNotFoundError(CodexError, FileNotFoundError):
    """No ``codex`` executable could be found or started."""


class TransportClosedError(CodexError):
    """The app-server is gone (exited, crashed, or the client was closed).

    ``stderr_tail`` holds the last lines the server wrote to stderr, with
    obvious secrets redacted, because that is almost always where the reason is.
    """

    def __init__(
        self, message: str, *, stderr_tail: str = "", returncode: int | None = None
    ) -> None:
        self.stderr_tail = stderr_tail
        self.returncode = returncode
        self.reason = message
        full = message
        if returncode is not None:
            full += f" (exit code {returncode})"
        if stderr_tail:
            full += "\n--- codex app-server stderr (last lines) ---\n" + stderr_tail
        super().__init__(full)


class StartupError(TransportClosedError):
    """The app-server exited or misbehaved before the initialize handshake finished."""


class InvalidArgumentError(CodexError, ValueError, TypeError):
    """Something we were asked to send is wrong before it reaches the server.

    An unknown keyword option, a sandbox or approval word outside the documented
    vocabulary, params that are not JSON, a malformed tool declaration.  Raised
    on the caller's thread, before anything is sent; the message names the
    offending field and what would be accepted.  Also a ``ValueError`` and a
    ``TypeError``, so code written against the built-in exceptions keeps working.
    """


# -- a remote app-server (``Codex(url=...)``) ---------------------------------------------


class RemoteConnectError(StartupError):
    """No session with the remote app-server at ``url``: unreachable, or the handshake failed.

    ``url`` never carries credentials.  Raised by ``Codex(url=...)`` (and
    ``AsyncCodex.start()``); nothing was sent to the server's agent.
    """

    def __init__(self, message: str, *, url: str) -> None:
        self.url = url
        super().__init__(message)


class AuthenticationError(RemoteConnectError):
    """The remote app-server refused the connection's token (HTTP 401 or 403).

    The token was missing, wrong, or (for signed tokens) expired.  ``status``
    is the HTTP status code.
    """

    def __init__(self, message: str, *, url: str, status: int) -> None:
        self.status = status
        super().__init__(message, url=url)


class IncompatibleServerError(RemoteConnectError):
    """The endpoint answered, but not as a codex app-server of this protocol generation.

    For example an HTTP page instead of a WebSocket, a WebSocket server that
    never answers or does not speak JSON-RPC, or a server that refuses our
    ``initialize``.
    """


class ConnectionLostError(TransportClosedError):
    """An established connection to a remote app-server ended.

    The server closed it, the network dropped it, or the server stopped
    answering pings.  Every waiter fails with it at once.  It is never retried
    automatically (a retried ``turn/start`` could start a turn twice): connect
    again and continue with ``thread_resume``.  ``close_code`` /
    ``close_reason`` are the WebSocket close frame's, when one arrived.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str,
        close_code: int | None = None,
        close_reason: str = "",
    ) -> None:
        self.url = url
        self.close_code = close_code
        self.close_reason = close_reason
        super().__init__(message)


class ProtocolError(CodexError):
    """The server answered with something the protocol does not allow.

    For example a ``thread/start`` result without a thread id, or a response
    carrying neither ``result`` nor ``error``.  A malformed *line* is not an
    error: it is logged, counted and skipped.
    """


class CodexTimeoutError(CodexError, TimeoutError):
    """A wait with a timeout ran out. The operation itself may still be running."""


class OutputParseError(CodexError, ValueError):
    """The final message of a structured-output turn did not validate."""

    def __init__(self, message: str, *, text: str) -> None:
        self.text = text
        super().__init__(message)


class CodexRpcError(CodexError):
    """The server answered a request with a JSON-RPC error object."""

    code: int

    def __init__(self, code: int, message: str, data: Any = None, *, method: str = "") -> None:
        self.code = code
        self.rpc_message = message
        self.data = data
        self.method = method
        where = f"{method}: " if method else ""
        super().__init__(f"{where}{message} (JSON-RPC error {code})")


class ParseError(CodexRpcError):
    """-32700: the server could not parse what we sent."""


class InvalidRequestError(CodexRpcError):
    """-32600: e.g. "Not initialized", a steer whose expected turn id is stale."""


class MethodNotFoundError(CodexRpcError):
    """-32601: this server does not know the method (older or newer codex?)."""


class InvalidParamsError(CodexRpcError):
    """-32602: the params did not match what the server expects."""


class InternalRpcError(CodexRpcError):
    """-32603: the server failed internally."""


class ServerOverloadedError(CodexRpcError):
    """-32001: the server asked us to retry later."""


_BY_CODE: dict[int, type[CodexRpcError]] = {
    -32700: ParseError,
    -32600: InvalidRequestError,
    -32601: MethodNotFoundError,
    -32602: InvalidParamsError,
    -32603: InternalRpcError,
    -32001: ServerOverloadedError,
}


def rpc_error_from(error: Any, *, method: str = "") -> CodexRpcError:
    """Map a JSON-RPC ``error`` member to the matching exception class."""
    if not isinstance(error, dict):
        return CodexRpcError(-32603, f"malformed error object: {error!r}", method=method)
    code = error.get("code")
    code = code if isinstance(code, int) else -32603
    message = str(error.get("message", "unknown error"))
    return _BY_CODE.get(code, CodexRpcError)(code, message, error.get("data"), method=method)


_SECRET_PATTERNS = [
    re.compile(r"sk-[A-Za-z0-9_\-]{6,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{8,}"),
    re.compile(
        r"(?i)((?:api[_-]?key|access[_-]?token|refresh[_-]?token|id[_-]?token|token|secret|"
        r"password|authorization)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]{4,}"
    ),
]


def redact(text: str, extra_secrets: tuple[str, ...] = ()) -> str:
    """Blank out things that look like credentials before text leaves the process."""
    secrets = [s for s in (*extra_secrets, os.environ.get("OPENAI_API_KEY", "")) if len(s) >= 6]
    for secret in secrets:
        text = text.replace(secret, "[REDACTED]")
    for pattern in _SECRET_PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + "[REDACTED]", text)
        else:
            text = pattern.sub("[REDACTED]", text)
    return text
