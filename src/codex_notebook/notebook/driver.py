"""One thread per turn: queue, start, stream into the widget, finish, let go.

The driver is the single writer of its turn's widget.  It waits for its place
in the slot's queue, gets the server (starting it if needed) and the slot's
codex thread, starts the turn, then sleeps one flush interval at a time,
folds everything that arrived into the transcript and flushes.  Sleeping a
fixed interval (woken early only by the person — a click, Stop) rather than
on every event keeps it off the GIL however fast the turn streams.

At the end — whatever happened, in ``finally`` — it shows the outcome,
replaces the live widget by the static rendering (with provenance metadata),
closes the widget, releases the slot's queue and drops every reference that
would keep the turn's events alive.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from ..errors import CodexError, TransportClosedError
from ..results import TurnResult
from .turn import TERMINAL, NotebookTurn

if TYPE_CHECKING:
    from ..client import TurnHandle
    from .session import NotebookSession

__all__ = ["FLUSH_INTERVAL_S", "start_driver"]

log = logging.getLogger("codex_notebook")

#: How often a live widget is updated (seconds between flushes).
FLUSH_INTERVAL_S = 1 / 15
#: How long a stop waits for the server to acknowledge ``turn/interrupt``.
INTERRUPT_TIMEOUT_S = 5.0


def start_driver(turn: NotebookTurn, session: NotebookSession) -> threading.Thread:
    thread = threading.Thread(
        target=_Driver(turn, session).run, name=f"codex-turn-{turn.number}", daemon=True
    )
    thread.start()
    return thread


class _Driver:
    def __init__(self, turn: NotebookTurn, session: NotebookSession) -> None:
        self.turn = turn
        self.session = session
        self.handle: TurnHandle | None = None
        self.interrupted = False

    def stop(self) -> bool:
        return self.turn.stop_requested or self.session.closing

    def flush(self) -> None:
        view = self.turn.view
        if view is not None:
            view.apply(self.turn.take_events())
            self.turn.forget_settled()
            view.flush(self.turn.header())

    def run(self) -> None:
        """Never raises: whatever happens is reported in the cell."""
        turn = self.turn
        result: TurnResult[Any] | None = None
        error: BaseException | None = None
        phase = "error"
        note: str | None = None
        try:
            ahead = turn.slot.ahead_of(turn)
            if ahead is not None:
                where = (
                    f"cell [{ahead.cell}]" if ahead.cell is not None else f"turn [{ahead.number}]"
                )
                turn.set_phase("queued", f"queued behind {where} on thread '{turn.thread_name}'")
                self.flush()
            if not turn.slot.wait_for_place(turn, self.stop):
                phase, note = "interrupted", "Stopped before it started."
                error = CodexError(f"turn [{turn.number}] was stopped before it started")
                return
            turn.set_phase("starting")
            self.flush()
            handle = self.start()
            if handle is None:
                phase, note = "interrupted", "Stopped before it started."
                error = CodexError(f"turn [{turn.number}] was stopped before it started")
                return
            self.stream(handle)
            result = handle.run(0)
            phase = result.status
            if phase == "interrupted" and self.interrupted:
                note = "Stopped from the notebook."
        except BaseException as exc:  # report everything in the cell; never kill the thread
            error, phase = exc, "error"
        finally:
            self.finish(result, error, phase, note)

    def start(self) -> TurnHandle | None:
        """The server, the slot's conversation, then ``turn/start`` (None: stopped meanwhile)."""
        turn, session = self.turn, self.session
        client = session.server.client()
        options = session.thread_options(turn.options)
        thread, notice = turn.slot.resolve(client, start=options, resume=options)
        missing = session.missing_tools(thread)
        notices = [n for n in (session.server.notice, notice, missing) if n]
        if notices:  # e.g. the demo's sandbox fallback, a conversation that could not resume
            turn.set_notice(" ".join(notices))
        if self.stop():
            return None
        session.activate(thread.id, turn)  # before turn/start: its tool calls find this cell
        handle = thread.turn(
            turn.prompt,
            request_handler=turn.on_request,
            timeout=client.request_timeout,
            **session.turn_options(turn.options),
        )
        self.handle = handle
        turn.started(
            thread.id,
            handle.id,
            str(thread.info.get("model") or "") or None,
            {
                "backend": session.server.backend_name,
                "server": client.server_url,
                "server_version": client.server_version,
            },
        )
        return handle

    def stream(self, handle: TurnHandle) -> None:
        """Sleep a flush interval, fold everything that arrived, flush; until the turn ends."""
        turn = self.turn
        cursor = handle.cursor()
        timeout = turn.options.timeout
        deadline = time.monotonic() + timeout if timeout is not None else None
        while True:
            turn.sleep(FLUSH_INTERVAL_S)
            finished = handle.done()
            batch = cursor.take()
            view = turn.view
            if batch and view is not None:
                view.apply(batch)
            self.flush()
            if batch is None or (finished and not batch):
                return
            if self.stop() and not self.interrupted:
                self.interrupt(handle)
            if deadline is not None and time.monotonic() >= deadline:
                deadline = None
                turn.set_notice(f"Stopped after the --timeout of {timeout} s.")
                self.interrupt(handle)

    def interrupt(self, handle: TurnHandle) -> None:
        self.interrupted = True
        try:
            handle.interrupt(timeout=INTERRUPT_TIMEOUT_S)
        except CodexError as exc:
            log.info("codex_notebook: interrupt of turn %s failed: %s", handle.id, exc)

    def finish(
        self,
        result: TurnResult[Any] | None,
        error: BaseException | None,
        phase: str,
        note: str | None,
    ) -> None:
        turn, session = self.turn, self.session
        bundle: dict[str, str] | None = None
        try:
            turn.finished(result, error, phase if phase in TERMINAL else "error")
            view = turn.view
            if view is not None:
                try:
                    view.apply(turn.take_events())
                    failure = _explain(error) if error is not None and phase == "error" else None
                    view.finish(failure, notice=note)
                    header = turn.header()
                    view.flush(header)
                    bundle = view.static_bundle(header)
                    try:
                        turn.publish(bundle, session.current_cell())
                    except Exception:
                        log.exception("codex_notebook: could not publish the final rendering")
                finally:
                    view.close()  # whatever failed: no widget outlives its turn
        except Exception:
            log.exception("codex_notebook: finishing turn [%s] failed", turn.number)
        finally:
            self.handle = None
            session.deactivate(turn)
            turn.slot.release(turn)
            turn.released(bundle)
            session.turn_done(turn)


def _describe(turn: NotebookTurn) -> str:
    return f"cell [{turn.cell}]" if turn.cell is not None else f"turn [{turn.number}]"


def _explain(exc: BaseException) -> str:
    if isinstance(exc, TransportClosedError):
        return (
            f"The codex app-server stopped: {exc.reason}. The next %%codex cell starts a "
            f"fresh one (`%codex log` shows its last messages).\n\n{exc.stderr_tail}".strip()
        )
    if isinstance(exc, CodexError):
        return f"{type(exc).__name__}: {exc}"
    return f"Unexpected {type(exc).__name__}: {exc}"
