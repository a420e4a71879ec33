"""The synchronous client: ``Codex`` -> ``Thread`` -> ``TurnHandle``.

Every blocking call takes ``timeout=`` and has a way out (transport death,
close, timeout).  Waiting is done on the router's futures and conditions; no
extra threads are created per turn.  The asyncio face (:mod:`.aio`) has the
same methods with the same parameters (a test compares the two).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from pydantic import BaseModel

from ._core import (
    ClientCore,
    ClientFace,
    InputLike,
    ThreadFace,
    ThreadSetup,
    ToolsArg,
    TurnCore,
    TurnFace,
    thread_list_params,
)
from ._params import turn_params
from ._workers import wait_limit
from .errors import CodexTimeoutError, TransportClosedError
from .messages import Notification
from .policies import Approval, Sandbox
from .results import TurnResult
from .router import RequestHandler
from .transport import Transport

__all__ = ["Codex", "Thread", "TurnHandle"]

#: Default ceiling for one JSON-RPC request (not for a whole turn).
REQUEST_TIMEOUT_S = 120.0
STARTUP_TIMEOUT_S = 60.0


class Codex(ClientFace):
    """One ``codex app-server`` process and everything routed through it.

    Spawns and initializes on construction; use as a context manager or call
    :meth:`close` (dropping the last reference also stops the server, unless a
    handler given to it refers to the client).  Safe to share between threads.
    ``experimental_api=True`` asks codex for its experimental API, which client
    tools (``thread_start(tools=...)``) need.

    ``approval_handler(request)`` answers the server requests no turn handler
    takes, off the reader thread on a bounded pool of workers: return the JSON
    result, None for the safe refusal (decline), or :data:`~codex_notebook.DEFER`
    to answer later with ``request.respond(...)`` — do that, rather than block,
    when a person has to decide.

    ``url="ws://HOST:PORT"`` (with ``token=`` or ``token_file=``) connects to a
    running ``codex app-server --listen`` instead of spawning one (docs/remote.md).
    """

    def __init__(
        self,
        codex_bin: str | os.PathLike[str] | None = None,
        codex_home: str | os.PathLike[str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        config: Mapping[str, Any] | None = None,
        approval_handler: RequestHandler | None = None,
        *,
        experimental_api: bool = False,
        url: str | None = None,
        token: str | None = None,
        token_file: str | os.PathLike[str] | None = None,
        transport: Transport | None = None,
        startup_timeout: float = STARTUP_TIMEOUT_S,
        request_timeout: float | None = REQUEST_TIMEOUT_S,
    ) -> None:
        self._bind(
            ClientCore(
                codex_bin=codex_bin,
                codex_home=codex_home,
                cwd=cwd,
                env=env,
                config=config,
                approval_handler=approval_handler,
                transport=transport,
                experimental_api=experimental_api,
                url=url,
                token=token,
                token_file=token_file,
            )
        )
        self.request_timeout = request_timeout
        try:
            self._core.mark_started()
            future = self._core.start_initialize()
            result = self._wait(future, startup_timeout, "initialize")
            self._core.finish_initialize(result)
        except TransportClosedError as exc:
            self._core.close()
            raise self._core.startup_error(exc) from exc
        except BaseException:
            self._core.close()
            raise

    # -- lifecycle --------------------------------------------------------------------
    def __enter__(self) -> Codex:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the app-server and release every waiter. Idempotent, any thread."""
        self._close_core()

    # -- requests ---------------------------------------------------------------------
    def _wait(self, future: Future[Any], timeout: float | None, what: str) -> Any:
        try:
            return future.result(wait_limit(timeout))
        except FutureTimeout:
            self._core.router.forget_request(future)
            raise CodexTimeoutError(f"{what}: no answer from codex within {timeout} s") from None

    def request(self, method: str, params: Any = None, *, timeout: float | None = None) -> Any:
        """Send any JSON-RPC request and return its result (the raw escape hatch)."""
        self._core.check_open()
        future = self._core.router.start_request(method, params)
        return self._wait(future, timeout if timeout is not None else self.request_timeout, method)

    def notifications(self, *, timeout: float | None = None) -> Iterator[Notification]:
        """Notifications that belong to no turn, from a bounded drop-oldest buffer.

        Ends when the client closes, or when nothing arrives within ``timeout``.
        """
        channel = self._core.router.channel
        while (item := channel.get(timeout)) is not None:
            yield item

    # -- threads ----------------------------------------------------------------------
    def _thread(self, setup: ThreadSetup, timeout: float | None) -> Thread:
        response = self.request(setup.method, setup.params, timeout=timeout)
        thread_id, tool_names = self._core.adopt_thread(setup, response)
        return Thread(self, thread_id, response, tool_names)

    def thread_start(
        self,
        model: str | None = None,
        cwd: str | os.PathLike[str] | None = None,
        sandbox: Sandbox | None = None,
        approval_policy: Approval | None = None,
        *,
        config: Mapping[str, Any] | None = None,
        base_instructions: str | None = None,
        developer_instructions: str | None = None,
        ephemeral: bool | None = None,
        tools: ToolsArg = None,
        timeout: float | None = None,
        **options: Any,
    ) -> Thread:
        """Start a conversation.

        ``sandbox``: read-only | workspace-write | full-access.  ``approval_policy``:
        ask | review | deny.  ``tools``: client tools the model may call on this
        thread (needs ``experimental_api=True``; fixed for the thread's life).
        ``options``: any other field of codex's thread/start params, by its
        snake_case name (checked: unknown names are an error).
        """
        setup = self._core.thread_setup(
            "thread/start",
            model=model,
            cwd=cwd,
            sandbox=sandbox,
            approval_policy=approval_policy,
            config=config,
            base_instructions=base_instructions,
            developer_instructions=developer_instructions,
            ephemeral=ephemeral,
            tools=tools,
            options=options,
        )
        return self._thread(setup, timeout)

    def thread_resume(
        self,
        thread_id: str,
        *,
        model: str | None = None,
        cwd: str | os.PathLike[str] | None = None,
        sandbox: Sandbox | None = None,
        approval_policy: Approval | None = None,
        config: Mapping[str, Any] | None = None,
        base_instructions: str | None = None,
        developer_instructions: str | None = None,
        tools: ToolsArg = None,
        include_turns: bool = False,
        timeout: float | None = None,
        **options: Any,
    ) -> Thread:
        """Continue a stored conversation (same settings as :meth:`thread_start`).

        ``tools`` re-registers the handlers of the tools the thread was started
        with (codex restores the tool set itself; it cannot change).
        ``include_turns``: also load the history into ``thread.info``.
        """
        setup = self._core.thread_setup(
            "thread/resume",
            thread_id=thread_id,
            model=model,
            cwd=cwd,
            sandbox=sandbox,
            approval_policy=approval_policy,
            config=config,
            base_instructions=base_instructions,
            developer_instructions=developer_instructions,
            tools=tools,
            include_turns=include_turns,
            options=options,
        )
        return self._thread(setup, timeout)

    def thread_fork(
        self,
        thread_id: str,
        *,
        model: str | None = None,
        cwd: str | os.PathLike[str] | None = None,
        sandbox: Sandbox | None = None,
        approval_policy: Approval | None = None,
        config: Mapping[str, Any] | None = None,
        base_instructions: str | None = None,
        developer_instructions: str | None = None,
        ephemeral: bool | None = None,
        tools: ToolsArg = None,
        include_turns: bool = False,
        timeout: float | None = None,
        **options: Any,
    ) -> Thread:
        """Branch a conversation into a new thread (it keeps the source's tools)."""
        setup = self._core.thread_setup(
            "thread/fork",
            thread_id=thread_id,
            model=model,
            cwd=cwd,
            sandbox=sandbox,
            approval_policy=approval_policy,
            config=config,
            base_instructions=base_instructions,
            developer_instructions=developer_instructions,
            ephemeral=ephemeral,
            tools=tools,
            include_turns=include_turns,
            options=options,
        )
        return self._thread(setup, timeout)

    def thread_read(
        self, thread_id: str, *, include_turns: bool = False, timeout: float | None = None
    ) -> dict[str, Any]:
        """What the server stores about a thread (``include_turns``: with its history)."""
        params = {"threadId": thread_id, "includeTurns": include_turns}
        result = self.request("thread/read", params, timeout=timeout)
        return dict(result) if isinstance(result, dict) else {}

    def thread_list(self, *, timeout: float | None = None, **options: Any) -> dict[str, Any]:
        """Stored threads (``options``: thread/list params by snake_case name, e.g. limit=)."""
        result = self.request("thread/list", thread_list_params(options), timeout=timeout)
        return dict(result) if isinstance(result, dict) else {}


class Thread(ThreadFace):
    """A conversation. Turns on one thread must not overlap (the server folds them)."""

    def __init__(
        self, codex: Codex, thread_id: str, response: Any, tool_names: frozenset[str] | None
    ) -> None:
        super().__init__(thread_id, response, tool_names)
        self._codex = codex

    def turn(
        self,
        input: InputLike,
        *,
        output_schema: type[BaseModel] | Mapping[str, Any] | None = None,
        request_handler: RequestHandler | None = None,
        timeout: float | None = None,
        model: str | None = None,
        effort: str | None = None,
        summary: str | None = None,
        cwd: str | os.PathLike[str] | None = None,
        sandbox: Sandbox | None = None,
        approval_policy: Approval | None = None,
        **options: Any,
    ) -> TurnHandle:
        """Start a turn; returns once the server accepted it.

        ``request_handler`` answers this turn's server requests (approvals...);
        it is registered for the thread before ``turn/start`` is sent, so it
        sees every request however early.  It may return an answer, None (the
        safe refusal) or :data:`~codex_notebook.DEFER`.  ``timeout`` bounds the
        wait for the server to accept the turn, not the turn itself.
        """
        params = turn_params(
            self.id,
            input,
            model=model,
            effort=effort,
            summary=summary,
            cwd=cwd,
            sandbox=sandbox,
            approval_policy=approval_policy,
            output_schema=output_schema,
            options=options,
        )
        core = self._codex._core
        core.router.begin_turn(self.id, request_handler)
        try:
            response = self._codex.request("turn/start", params, timeout=timeout)
        except BaseException:
            core.router.abandon_turn(self.id)
            raise
        return TurnHandle(
            self._codex, core.turn_started(self.id, response, request_handler, output_schema)
        )

    def run(
        self, input: InputLike, *, timeout: float | None = None, **options: Any
    ) -> TurnResult[Any]:
        """``turn(input, **options).run(timeout)``: the whole turn within ``timeout``."""
        return self.turn(input, **options).run(timeout)

    def read(self, *, include_turns: bool = False, timeout: float | None = None) -> dict[str, Any]:
        return self._codex.thread_read(self.id, include_turns=include_turns, timeout=timeout)

    def fork(self, **overrides: Any) -> Thread:
        """``codex.thread_fork(thread.id, **overrides)``."""
        return self._codex.thread_fork(self.id, **overrides)

    def set_name(self, name: str, *, timeout: float | None = None) -> None:
        """Give the thread a name (shown by codex's own thread lists)."""
        self._codex.request("thread/name/set", {"threadId": self.id, "name": name}, timeout=timeout)


class TurnHandle(TurnFace):
    """One running (or finished) turn. Every consumer sees every event of it."""

    def __init__(self, codex: Codex, core: TurnCore) -> None:
        super().__init__(core)
        self._codex = codex

    def stream(self, *, timeout: float | None = None) -> Iterator[Notification]:
        """This turn's events, from the first, ending after ``turn/completed``.

        ``timeout`` bounds the wait for each next event.  Server requests
        (approvals, tool calls) appear as :class:`~codex_notebook.ServerRequest` events.
        """
        yield from self.cursor().events(timeout)

    def stream_text(self, *, timeout: float | None = None) -> Iterator[str]:
        """Only the agent's message text, delta by delta."""
        for event in self.stream(timeout=timeout):
            if event.method == "item/agentMessage/delta":
                yield str(event.params_dict.get("delta", ""))

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the turn is over (or the transport died). False on timeout."""
        return self._core.log.done.wait(wait_limit(timeout))  # woken once, at the end

    def run(self, timeout: float | None = None) -> TurnResult[Any]:
        """Wait for the end and return the result (the same object every time)."""
        if not self.wait(timeout):
            raise CodexTimeoutError(
                f"turn {self.id} did not finish within {timeout} s (it is still running; "
                "call interrupt() to stop it)"
            )
        return self._core.result()

    def interrupt(self, *, timeout: float | None = None) -> None:
        """Ask the server to stop this turn; it then completes as ``interrupted``."""
        if self.done():
            return
        self._codex.request("turn/interrupt", self._core.interrupt_params(), timeout=timeout)

    def steer(self, input: InputLike, *, timeout: float | None = None) -> None:
        """Add input to this running turn."""
        self._codex.request("turn/steer", self._core.steer_params(input), timeout=timeout)
