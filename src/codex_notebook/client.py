"""The synchronous client: ``Codex`` -> ``Thread`` -> ``TurnHandle``.

Every blocking call takes ``timeout=`` and has a way out (transport death,
close, timeout).  Waiting is done on the router's futures and conditions; no
extra threads are created per turn.
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
    TurnCore,
    TurnFace,
    output_model,
    thread_params,
    turn_id_of,
    turn_params,
)
from .errors import CodexTimeoutError, TransportClosedError
from .messages import Notification
from .results import TurnResult
from .router import RequestHandler, TurnCursor
from .transport import Transport

__all__ = ["Codex", "Thread", "TurnHandle"]

#: Default ceiling for one JSON-RPC request (not for a whole turn).
REQUEST_TIMEOUT_S = 120.0
STARTUP_TIMEOUT_S = 60.0


class Codex(ClientFace):
    """One ``codex app-server`` process and everything routed through it.

    Spawns and initializes on construction; use as a context manager or call
    :meth:`close`.  Safe to share between threads.  ``url="ws://HOST:PORT"``
    (with ``token=`` or ``token_file=``) connects to a running ``codex
    app-server --listen`` instead of spawning one (docs/remote.md).
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
        url: str | None = None,
        token: str | None = None,
        token_file: str | os.PathLike[str] | None = None,
        transport: Transport | None = None,
        startup_timeout: float = STARTUP_TIMEOUT_S,
        request_timeout: float | None = REQUEST_TIMEOUT_S,
    ) -> None:
        self._core = ClientCore(
            codex_bin=codex_bin,
            codex_home=codex_home,
            cwd=cwd,
            env=env,
            config=config,
            approval_handler=approval_handler,
            transport=transport,
            url=url,
            token=token,
            token_file=token_file,
        )
        self.request_timeout = request_timeout
        try:
            future = self._core.start_initialize()
            result = self._wait(future, startup_timeout, "initialize")
        except TransportClosedError as exc:
            self._core.close()
            raise self._core.startup_error(exc) from exc
        except BaseException:
            self._core.close()
            raise
        self._core.finish_initialize(result)

    # -- lifecycle --------------------------------------------------------------------
    def __enter__(self) -> Codex:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the app-server and release every waiter. Idempotent, any thread."""
        self._core.close()

    # -- requests ---------------------------------------------------------------------
    def _wait(self, future: Future[Any], timeout: float | None, what: str) -> Any:
        try:
            return future.result(timeout)
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
    def thread_start(
        self,
        model: str | None = None,
        cwd: str | os.PathLike[str] | None = None,
        sandbox: str | None = None,
        approval_policy: str | None = None,
        **options: Any,
    ) -> Thread:
        """Start a conversation. ``options``: approvals_reviewer, config, base_instructions,
        developer_instructions, ephemeral, or any other wire field."""
        params = thread_params(
            model=model, cwd=cwd, sandbox=sandbox, approval_policy=approval_policy, **options
        )
        return Thread(self, self.request("thread/start", params))

    def thread_resume(self, thread_id: str, **overrides: Any) -> Thread:
        """Continue a stored conversation (same overrides as :meth:`thread_start`)."""
        params = {"threadId": thread_id, **thread_params(**overrides)}
        return Thread(self, self.request("thread/resume", params))

    def thread_fork(self, thread_id: str, **overrides: Any) -> Thread:
        """Branch a conversation into a new thread."""
        params = {"threadId": thread_id, **thread_params(**overrides)}
        return Thread(self, self.request("thread/fork", params))

    def thread_read(self, thread_id: str, *, include_turns: bool = False) -> dict[str, Any]:
        result = self.request("thread/read", {"threadId": thread_id, "includeTurns": include_turns})
        return dict(result) if isinstance(result, dict) else {}

    def thread_list(self, **params: Any) -> dict[str, Any]:
        result = self.request("thread/list", params)
        return dict(result) if isinstance(result, dict) else {}


class Thread(ThreadFace):
    """A conversation. Turns on one thread must not overlap (the server folds them)."""

    def __init__(self, codex: Codex, response: Any) -> None:
        super().__init__(response)
        self._codex = codex

    def turn(
        self,
        input: InputLike,
        *,
        output_schema: type[BaseModel] | Mapping[str, Any] | None = None,
        request_handler: RequestHandler | None = None,
        timeout: float | None = None,
        **options: Any,
    ) -> TurnHandle:
        """Start a turn; returns once the server accepted it.

        ``options``: model, effort, summary, cwd, sandbox, approval_policy,
        approvals_reviewer.  ``request_handler`` answers this turn's approvals.
        """
        params = turn_params(self.id, input, output_schema=output_schema, **options)
        result = self._codex.request("turn/start", params, timeout=timeout)
        turn_id = turn_id_of(result)
        turn_log = self._codex._core.router.claim(turn_id, self.id, request_handler)
        core = TurnCore(self._codex._core, turn_id, self.id, turn_log, output_model(output_schema))
        return TurnHandle(self._codex, core)

    def run(
        self, input: InputLike, *, timeout: float | None = None, **options: Any
    ) -> TurnResult[Any]:
        """``turn(...).run(timeout)``."""
        return self.turn(input, **options).run(timeout)

    def read(self, *, include_turns: bool = False) -> dict[str, Any]:
        return self._codex.thread_read(self.id, include_turns=include_turns)

    def fork(self, **overrides: Any) -> Thread:
        return self._codex.thread_fork(self.id, **overrides)

    def set_name(self, name: str) -> None:
        self._codex.request("thread/name/set", {"threadId": self.id, "name": name})


class TurnHandle(TurnFace):
    """One running (or finished) turn. Every consumer sees every event of it."""

    def __init__(self, codex: Codex, core: TurnCore) -> None:
        super().__init__(core)
        self._codex = codex

    def stream(self, *, timeout: float | None = None) -> Iterator[Notification]:
        """This turn's events, from the first, ending after ``turn/completed``.

        ``timeout`` bounds the wait for each next event.  Server requests
        (approvals) appear as :class:`~codex_notebook.ServerRequest` events.
        """
        cursor = self._core.log.cursor()
        while (batch := cursor.next_batch(timeout)) is not None:
            yield from batch

    def cursor(self) -> TurnCursor:
        """A new reader of this turn's events from the first (``take()`` never blocks)."""
        return self._core.log.cursor()

    def stream_text(self, *, timeout: float | None = None) -> Iterator[str]:
        """Only the agent's message text, delta by delta."""
        for event in self.stream(timeout=timeout):
            if event.method == "item/agentMessage/delta":
                yield str(event.params_dict.get("delta", ""))

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the turn is over (or the transport died). False on timeout."""
        return self._core.log.done.wait(timeout)  # woken once, at the end

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
