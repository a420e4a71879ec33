"""What the sync and the asyncio clients share: lifecycle, handshake, params.

Both clients are thin faces over this: the only difference between them is
how a caller waits (blocking on a future or condition vs awaiting a loop
future woken with ``call_soon_threadsafe``).
"""

from __future__ import annotations

import enum
import os
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from pydantic import BaseModel

from .approvals import decline_all
from .errors import CodexError, StartupError, TransportClosedError
from .remote import check_initialize, make_transport, server_url
from .results import TurnResult, collect_result
from .router import RequestHandler, Router, TurnLog
from .transport import Transport

__all__ = [
    "ClientCore",
    "ClientFace",
    "ClientState",
    "InputLike",
    "ThreadFace",
    "TurnCore",
    "TurnFace",
]

CLIENT_NAME = "codex_notebook"
InputLike = str | Mapping[str, Any] | Sequence[str | Mapping[str, Any]]

_SANDBOX_MODES = {
    "read-only": "read-only",
    "readonly": "read-only",
    "workspace-write": "workspace-write",
    "full-access": "danger-full-access",
    "danger-full-access": "danger-full-access",
}
_SANDBOX_POLICIES = {
    "read-only": {"type": "readOnly"},
    "workspace-write": {"type": "workspaceWrite"},
    "danger-full-access": {"type": "dangerFullAccess"},
}


class ClientState(enum.Enum):
    UNSTARTED = "unstarted"
    RUNNING = "running"
    CLOSED = "closed"


def _package_version() -> str:
    from . import __version__

    return __version__


class ClientCore:
    """Owns the transport and the router of one client."""

    def __init__(
        self,
        *,
        codex_bin: str | os.PathLike[str] | None = None,
        codex_home: str | os.PathLike[str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        config: Mapping[str, Any] | None = None,
        approval_handler: RequestHandler | None = None,
        transport: Transport | None = None,
        url: str | None = None,
        token: str | None = None,
        token_file: str | os.PathLike[str] | None = None,
        client_name: str = CLIENT_NAME,
        opt_out_notifications: Sequence[str] = (),
    ) -> None:
        self.transport: Transport = transport or make_transport(
            codex_bin=codex_bin,
            url=url,
            token=token,
            token_file=token_file,
            codex_home=codex_home,
            cwd=cwd,
            env=env,
            config=config,
        )
        self.router = Router(self._send, default_handler=approval_handler or decline_all)
        self.state = ClientState.UNSTARTED
        self.client_name = client_name
        self.opt_out = list(opt_out_notifications)
        self.init_result: dict[str, Any] = {}
        self._state_lock = threading.Lock()
        self._finalizer = weakref.finalize(self, self.transport.close)

    # LineSink ---------------------------------------------------------------------------
    def feed_batch(self, lines: Iterable[bytes]) -> None:
        self.router.feed_batch(lines)

    def closed(self, error: TransportClosedError) -> None:
        with self._state_lock:
            self.state = ClientState.CLOSED
        self.router.closed(error)

    # lifecycle --------------------------------------------------------------------------
    def _send(self, message: dict[str, Any]) -> None:
        self.transport.send(message)

    def start_initialize(self) -> Future[Any]:
        with self._state_lock:
            if self.state is not ClientState.UNSTARTED:
                raise CodexError(f"client already {self.state.value}")
            self.state = ClientState.RUNNING
        self.transport.start(self)
        capabilities: dict[str, Any] = {}
        if self.opt_out:
            capabilities["optOutNotificationMethods"] = self.opt_out
        params = {
            "clientInfo": {
                "name": self.client_name,
                "title": "codex-notebook",
                "version": _package_version(),
            },
            "capabilities": capabilities or None,
        }
        return check_initialize(self.transport, self.router.start_request("initialize", params))

    def finish_initialize(self, result: Any) -> None:
        self.init_result = result if isinstance(result, dict) else {}
        self.router.notify("initialized")

    def startup_error(self, exc: BaseException) -> StartupError:
        if isinstance(exc, StartupError):  # already says what failed (e.g. a remote's token)
            return exc
        tail = self.transport.stderr_tail()
        returncode = exc.returncode if isinstance(exc, TransportClosedError) else None
        reason = exc.reason if isinstance(exc, TransportClosedError) else str(exc)
        return StartupError(
            f"codex app-server failed to start: {reason}", stderr_tail=tail, returncode=returncode
        )

    def check_open(self) -> None:
        if self.router.error is not None:
            raise self.router.error
        if self.state is ClientState.CLOSED:
            raise TransportClosedError("the client is closed")

    def close(self) -> None:
        with self._state_lock:
            was = self.state
            self.state = ClientState.CLOSED
        if was is not ClientState.UNSTARTED:
            self.transport.close()
        self.router.closed(TransportClosedError("the client was closed"))
        self._finalizer.detach()

    # facts from initialize --------------------------------------------------------------
    @property
    def user_agent(self) -> str:
        return str(self.init_result.get("userAgent", ""))

    @property
    def server_version(self) -> str | None:
        return parse_server_version(self.user_agent)


def parse_server_version(user_agent: str) -> str | None:
    """``"codex_notebook/0.163.0 (Debian ...)"`` -> ``"0.163.0"``."""
    head = user_agent.split(" ", 1)[0]
    if "/" not in head:
        return None
    version = head.rsplit("/", 1)[1]
    return version or None


# -- params ----------------------------------------------------------------------------


def sandbox_mode(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return _SANDBOX_MODES[value]
    except KeyError:
        raise ValueError(
            f"unknown sandbox {value!r}; use read-only, workspace-write or full-access"
        ) from None


def _drop_none(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def thread_params(
    *,
    model: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
    sandbox: str | None = None,
    approval_policy: str | None = None,
    approvals_reviewer: str | None = None,
    config: Mapping[str, Any] | None = None,
    base_instructions: str | None = None,
    developer_instructions: str | None = None,
    ephemeral: bool | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Params shared by thread/start, thread/resume and thread/fork (camelCase on the wire)."""
    return _drop_none(
        {
            "model": model,
            "cwd": os.fspath(cwd) if cwd is not None else None,
            "sandbox": sandbox_mode(sandbox),
            "approvalPolicy": approval_policy,
            "approvalsReviewer": approvals_reviewer,
            "config": dict(config) if config else None,
            "baseInstructions": base_instructions,
            "developerInstructions": developer_instructions,
            "ephemeral": ephemeral,
            **extra,
        }
    )


def input_items(value: InputLike) -> list[dict[str, Any]]:
    """A prompt string, one input item, or a list of them -> the wire's input list."""
    if isinstance(value, str):
        return [{"type": "text", "text": value}]
    if isinstance(value, Mapping):
        return [dict(value)]
    items: list[dict[str, Any]] = []
    for part in value:
        items.extend(input_items(part))
    if not items:
        raise ValueError("a turn needs some input: pass a prompt string or input items")
    return items


def output_schema_of(schema: type[BaseModel] | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """JSON Schema for ``outputSchema``: from a pydantic model (made strict) or as given."""
    if schema is None:
        return None
    if isinstance(schema, Mapping):
        return dict(schema)
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        strict: dict[str, Any] = strict_schema(schema.model_json_schema())
        return strict
    raise TypeError("output_schema must be a pydantic model class or a JSON Schema dict")


def strict_schema(node: Any) -> Any:
    """Make a pydantic JSON Schema acceptable to strict structured outputs.

    OpenAI's strict mode wants every object closed (``additionalProperties:
    false``) with all properties required; optional fields stay expressible as
    ``anyOf [..., null]``, which pydantic already emits for ``X | None``.
    """
    if isinstance(node, list):
        return [strict_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict_schema(v) for k, v in node.items() if k != "default"}
    if out.get("type") == "object" and "properties" in out:
        out["additionalProperties"] = False
        out["required"] = list(out["properties"])
    return out


def turn_params(
    thread_id: str,
    value: InputLike,
    *,
    model: str | None = None,
    effort: str | None = None,
    summary: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
    sandbox: str | None = None,
    approval_policy: str | None = None,
    approvals_reviewer: str | None = None,
    output_schema: type[BaseModel] | Mapping[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    mode = sandbox_mode(sandbox)
    return _drop_none(
        {
            "threadId": thread_id,
            "input": input_items(value),
            "model": model,
            "effort": effort,
            "summary": summary,
            "cwd": os.fspath(cwd) if cwd is not None else None,
            "sandboxPolicy": _SANDBOX_POLICIES[mode] if mode else None,
            "approvalPolicy": approval_policy,
            "approvalsReviewer": approvals_reviewer,
            "outputSchema": output_schema_of(output_schema),
            **extra,
        }
    )


def output_model(schema: type[BaseModel] | Mapping[str, Any] | None) -> type[BaseModel] | None:
    return schema if isinstance(schema, type) and issubclass(schema, BaseModel) else None


def thread_id_of(result: Any) -> str:
    thread = result.get("thread") if isinstance(result, dict) else None
    thread_id = thread.get("id") if isinstance(thread, dict) else None
    if not isinstance(thread_id, str):
        raise CodexError(f"unexpected thread response without a thread id: {result!r}")
    return thread_id


def turn_id_of(result: Any) -> str:
    turn = result.get("turn") if isinstance(result, dict) else None
    turn_id = turn.get("id") if isinstance(turn, dict) else None
    if not isinstance(turn_id, str):
        raise CodexError(f"unexpected turn/start response without a turn id: {result!r}")
    return turn_id


class TurnCore:
    """State one turn handle keeps: its log and its memoized result."""

    def __init__(
        self,
        core: ClientCore,
        turn_id: str,
        thread_id: str,
        turn_log: TurnLog,
        model: type[BaseModel] | None,
    ) -> None:
        self.core = core
        self.id = turn_id
        self.thread_id = thread_id
        self.log = turn_log
        self.output_model = model
        self._result: TurnResult[Any] | None = None

    @property
    def done(self) -> bool:
        return self.log.finished

    @property
    def state(self) -> str:
        """running / completed / interrupted / failed / transport-closed."""
        if self.log.error is not None:
            return "transport-closed"
        return self.result().status if self.log.completed else "running"

    def result(self) -> TurnResult[Any]:
        """Only once the log is finished: the result, or the transport error."""
        if self._result is None:
            if self.log.error is not None:
                raise self.log.error
            with self.log._cond:
                events = list(self.log.events)
            self._result = collect_result(self.id, self.thread_id, events, self.output_model)
        return self._result

    def interrupt_params(self) -> dict[str, Any]:
        return {"threadId": self.thread_id, "turnId": self.id}

    def steer_params(self, value: InputLike) -> dict[str, Any]:
        return {"threadId": self.thread_id, "expectedTurnId": self.id, "input": input_items(value)}


class ClientFace:
    """What the sync and async clients expose in common (no waiting here)."""

    _core: ClientCore

    @property
    def closed(self) -> bool:
        """True once the server is gone or the client was closed; new calls then fail."""
        return self._core.router.error is not None

    @property
    def server_version(self) -> str | None:
        """The codex version the server reported in ``initialize`` (e.g. ``"0.163.0"``)."""
        return self._core.server_version

    @property
    def user_agent(self) -> str:
        return self._core.user_agent

    @property
    def init_info(self) -> dict[str, Any]:
        """The whole ``initialize`` result (userAgent, codexHome, platform...)."""
        return dict(self._core.init_result)

    @property
    def pid(self) -> int | None:
        """The app-server's process id (None for non-process transports)."""
        return getattr(self._core.transport, "pid", None)

    @property
    def server_url(self) -> str | None:
        """Where turns run: the remote app-server's URL (``Codex(url=...)``), else None."""
        return server_url(self._core.transport)

    def stderr_tail(self) -> str:
        """The last lines the server wrote to stderr, secrets redacted."""
        return self._core.transport.stderr_tail()

    @property
    def router(self) -> Router:
        """The message router (diagnostics: live turn count, dropped and malformed counters)."""
        return self._core.router


class ThreadFace:
    """What the sync and async threads have in common: the id and what the server said."""

    def __init__(self, response: Any) -> None:
        self.id = thread_id_of(response)
        self.info: dict[str, Any] = response

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}>"


class TurnFace:
    """What the sync and async turn handles have in common (no waiting here)."""

    def __init__(self, core: TurnCore) -> None:
        self._core = core
        self.id = core.id
        self.thread_id = core.thread_id

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self._core.state}>"

    def done(self) -> bool:
        """Whether the turn is over (completed, interrupted, failed, or transport gone)."""
        return self._core.done

    @property
    def result(self) -> TurnResult[Any] | None:
        """The result if the turn is over, else None."""
        return self._core.result() if self._core.done else None
