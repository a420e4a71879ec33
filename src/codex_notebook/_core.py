"""What the sync and the asyncio clients share: lifecycle, handshake, threads, turns.

Both clients are thin faces over this: the only difference between them is
how a caller waits (blocking on a future or condition vs awaiting a loop
future woken with ``call_soon_threadsafe``).  Everything else — params, the
order of registrations around a request, what a response means — is here,
written once.

Lifetime: the reader thread holds the :class:`ClientCore` (it is the
transport's sink) but never a face; the face (``Codex`` / ``AsyncCodex``) owns
a ``weakref.finalize`` that closes the core, so dropping the last reference to
a client stops its app-server even though the reader thread lives on until then.
A collected face's core is closed on a thread of its own (the collection runs on
whatever thread allocated, maybe one holding this client's locks); the cores
still open at interpreter exit are closed there, inline.
"""

from __future__ import annotations

import atexit
import enum
import os
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from pydantic import BaseModel

from . import _rollout
from ._params import (
    InputLike,
    check_options,
    input_items,
    output_model,
    thread_id_of,
    thread_params,
    turn_id_of,
)
from .approvals import decline_all
from .errors import (
    CodexError,
    InvalidArgumentError,
    ProtocolError,
    StartupError,
    TransportClosedError,
)
from .messages import ServerRequest
from .remote import check_initialize, make_transport, server_url
from .results import TurnResult, fold_result
from .router import RequestHandler, Router, TurnCursor, TurnLog
from .tools import ToolRegistry, Toolset
from .transport import Transport

__all__ = [
    "ClientCore",
    "ClientFace",
    "ClientState",
    "InputLike",
    "ThreadFace",
    "ThreadSetup",
    "TurnCore",
    "TurnFace",
]

CLIENT_NAME = "codex_notebook"
ToolsArg = Toolset | Sequence[Toolset] | None


class ClientState(enum.Enum):
    UNSTARTED = "unstarted"
    RUNNING = "running"
    CLOSED = "closed"


def _package_version() -> str:
    from . import __version__

    return __version__


class ClientCore:
    """Owns the transport and the router of one client (never a face: see the module doc).

    ``state`` is guarded by ``_state_lock``.
    """

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
        experimental_api: bool = False,
        url: str | None = None,
        token: str | None = None,
        token_file: str | os.PathLike[str] | None = None,
        client_name: str = CLIENT_NAME,
        opt_out_notifications: Sequence[str] = (),
        start_hint: str = "",
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
        self.experimental_api = bool(experimental_api)
        self.opt_out = list(opt_out_notifications)
        self.init_result: dict[str, Any] = {}
        self.start_hint = start_hint
        self._state_lock = threading.Lock()

    # LineSink (reader thread) -------------------------------------------------------------
    def feed_batch(self, lines: Iterable[bytes]) -> None:
        self.router.feed_batch(lines)

    def closed(self, error: TransportClosedError) -> None:
        with self._state_lock:
            self.state = ClientState.CLOSED
        self.router.closed(error)

    # lifecycle --------------------------------------------------------------------------
    def _send(self, message: dict[str, Any]) -> None:
        self.transport.send(message)

    def mark_started(self) -> None:
        """Claim the one start of this client; a second start is refused, nothing else done."""
        with self._state_lock:
            if self.state is not ClientState.UNSTARTED:
                raise CodexError(
                    f"this client was already started ({self.state.value}); "
                    "create a new one to start another app-server"
                )
            self.state = ClientState.RUNNING

    def start_initialize(self) -> Future[Any]:
        """After :meth:`mark_started`: spawn or connect, and send ``initialize``."""
        self.transport.start(self)
        capabilities: dict[str, Any] = {}
        if self.experimental_api:
            capabilities["experimentalApi"] = True
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
        if not isinstance(result, dict):
            raise ProtocolError(f"initialize answered with {type(result).__name__}, not an object")
        self.init_result = result
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
        state = self.state
        if state is ClientState.UNSTARTED:
            raise CodexError(f"this client is not started yet. {self.start_hint}".strip())
        if state is ClientState.CLOSED:
            raise TransportClosedError("the client is closed")

    def close(self) -> None:
        """Stop the server and fail every waiter. Idempotent, any thread, never a face."""
        with self._state_lock:
            was = self.state
            self.state = ClientState.CLOSED
        if was is not ClientState.UNSTARTED:
            self.transport.close()
        self.router.closed(TransportClosedError("the client was closed"))

    # facts from initialize --------------------------------------------------------------
    @property
    def user_agent(self) -> str:
        return str(self.init_result.get("userAgent", ""))

    @property
    def server_version(self) -> str | None:
        return parse_server_version(self.user_agent)

    # threads ----------------------------------------------------------------------------
    def thread_setup(
        self,
        method: str,
        *,
        thread_id: str | None = None,
        model: str | None = None,
        cwd: str | os.PathLike[str] | None = None,
        sandbox: str | None = None,
        approval_policy: str | None = None,
        config: Mapping[str, Any] | None = None,
        base_instructions: str | None = None,
        developer_instructions: str | None = None,
        ephemeral: bool | None = None,
        tools: ToolsArg = None,
        include_turns: bool | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> ThreadSetup:
        """Build the params of thread/start, /resume or /fork (checked; nothing sent yet)."""
        where = {"thread/start": "thread_start()", "thread/resume": "thread_resume()"}.get(
            method, "thread_fork()"
        )
        params = thread_params(
            method,
            where=where,
            model=model,
            cwd=cwd,
            sandbox=sandbox,
            approval_policy=approval_policy,
            config=config,
            base_instructions=base_instructions,
            developer_instructions=developer_instructions,
            options=options,
        )
        if thread_id is not None:
            params = {"threadId": thread_id, **params}
        if ephemeral is not None:
            params["ephemeral"] = bool(ephemeral)
        if include_turns is not None:
            # the history is not needed to continue a thread; codex 0.171 deprecates loading it
            params["excludeTurns"] = not include_turns
        registry = ToolRegistry(tools) if tools is not None else None
        if registry is not None and method == "thread/start":
            if not self.experimental_api:
                raise InvalidArgumentError(
                    "thread_start(tools=...) needs codex's experimental API: create the client "
                    "with Codex(experimental_api=True) (or AsyncCodex(experimental_api=True))"
                )
            params["dynamicTools"] = registry.to_wire()
        return ThreadSetup(method, params, registry)

    def adopt_thread(self, setup: ThreadSetup, response: Any) -> tuple[str, frozenset[str] | None]:
        """After the response: register the thread's tool handlers; what tools it has."""
        thread_id = thread_id_of(response, setup.method)
        if setup.registry is not None:
            self.router.set_tools(thread_id, setup.registry)
        names: frozenset[str] | None
        if setup.method == "thread/start":
            names = setup.registry.names if setup.registry is not None else frozenset()
        else:  # resumed or forked: the server restored the set it saved with the thread
            thread = response.get("thread") if isinstance(response, dict) else None
            path = thread.get("path") if isinstance(thread, dict) else None
            names = _rollout.stored_tool_names(path if isinstance(path, str) else None)
        return thread_id, names

    # turns ------------------------------------------------------------------------------
    def turn_started(
        self,
        thread_id: str,
        response: Any,
        handler: RequestHandler | None,
        output_schema: type[BaseModel] | Mapping[str, Any] | None,
    ) -> TurnCore:
        """After the turn/start response (its :meth:`Router.begin_turn` came before)."""
        try:
            turn_id = turn_id_of(response)
        except BaseException:
            self.router.abandon_turn(thread_id)
            raise
        turn_log = self.router.claim(turn_id, thread_id, handler, started=True)
        return TurnCore(self, turn_id, thread_id, turn_log, output_model(output_schema))


class ThreadSetup:
    """Checked params of a thread request, plus the tools to register once it is answered."""

    __slots__ = ("method", "params", "registry")

    def __init__(self, method: str, params: dict[str, Any], registry: ToolRegistry | None):
        self.method = method
        self.params = params
        self.registry = registry


def parse_server_version(user_agent: str) -> str | None:
    """``"codex_notebook/0.163.0 (Debian ...)"`` -> ``"0.163.0"``."""
    head = user_agent.split(" ", 1)[0]
    if "/" not in head:
        return None
    version = head.rsplit("/", 1)[1]
    return version or None


def thread_list_params(options: Mapping[str, Any]) -> dict[str, Any]:
    return check_options("thread/list", options, where="thread_list()")


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
            with self.log._lock:
                pairs = list(zip(self.log.methods, self.log.params, strict=True))
            self._result = fold_result(self.id, self.thread_id, pairs, self.output_model)
        return self._result

    def interrupt_params(self) -> dict[str, Any]:
        return {"threadId": self.thread_id, "turnId": self.id}

    def steer_params(self, value: InputLike) -> dict[str, Any]:
        return {"threadId": self.thread_id, "expectedTurnId": self.id, "input": input_items(value)}


class ClientFace:
    """What the sync and async clients expose in common (no waiting here).

    :meth:`_bind` ties the core's lifetime to the face: when the face is
    garbage-collected (or the interpreter exits), the core is closed.
    """

    _core: ClientCore
    _finalizer: weakref.finalize[[ClientCore], ClientFace]

    def _bind(self, core: ClientCore) -> None:
        self._core = core
        self._finalizer = weakref.finalize(self, _close_collected, core)
        self._finalizer.atexit = False  # _close_at_exit() closes it inline instead
        _OPEN.add(core)

    def _close_core(self) -> None:
        """Close now, on this thread (``close()``): the finalizer has nothing left to do."""
        self._finalizer.detach()
        self._core.close()

    @property
    def closed(self) -> bool:
        """True once the server is gone or the client was closed; new calls then fail."""
        return self._core.router.error is not None

    @property
    def experimental_api(self) -> bool:
        """Whether ``initialize`` asked for codex's experimental API (needed for tools)."""
        return self._core.experimental_api

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


#: Cores of live faces, closed inline at interpreter exit (weak: a core lives as long as its
#: face or its reader thread), and the threads closing collected ones (joined at exit).
_OPEN: weakref.WeakSet[ClientCore] = weakref.WeakSet()
_CLOSING: set[threading.Thread] = set()


def _close_collected(core: ClientCore) -> None:
    """A face was garbage-collected: close its core on a thread of its own.

    The cyclic collector runs on whichever thread allocates, and the reader
    thread allocates the most: closing inline there, inside the router's lock,
    deadlocked the reader; on another client's reader it stalled that stream.
    """

    def close() -> None:
        try:
            core.close()
        finally:
            _CLOSING.discard(threading.current_thread())

    closer = threading.Thread(target=close, name="codex-close", daemon=True)
    _CLOSING.add(closer)
    try:
        closer.start()
    except RuntimeError:  # the interpreter is shutting down: no new threads
        _CLOSING.discard(closer)
        core.close()


@atexit.register
def _close_at_exit() -> None:
    """Stop every app-server still running when the interpreter exits (signals, reaped)."""
    for closer in list(_CLOSING):
        closer.join(10.0)  # a close already under way finishes, rather than dying with us
    for core in list(_OPEN):
        core.close()


class ThreadFace:
    """What the sync and async threads have in common: the id and what the server said."""

    def __init__(self, thread_id: str, response: Any, tool_names: frozenset[str] | None) -> None:
        self.id = thread_id
        self.info: dict[str, Any] = response if isinstance(response, dict) else {}
        self._tool_names = tool_names

    @property
    def tool_names(self) -> frozenset[str] | None:
        """The client tools this thread offers the model (``namespace.tool``), as far as known.

        Known for a thread started here (what was declared, or an empty set),
        and for a resumed or forked thread whose stored session record is
        readable on this machine; None when unknown (an ephemeral thread, a
        remote app-server).  An empty set means the thread has no tools and can
        never gain them: start a new thread to get tools.
        """
        return self._tool_names

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

    def cursor(self) -> TurnCursor:
        """A new reader of this turn's events, from the first: ``take()`` never blocks.

        Each consumer needs its own cursor; every cursor sees every event once, in order.
        """
        return self._core.log.cursor()

    @property
    def pending_requests(self) -> list[ServerRequest]:
        """This turn's server requests that are not settled yet (oldest first)."""
        with self._core.log._lock:
            requests = list(self._core.log.pending_requests)
        return [request for request in requests if not request.settled]
