"""A cell's turn as the notebook user holds it (``-o VAR``, ``last_turn()``).

:class:`NotebookTurn` is the one owner of a turn's facts: its phase, its
clock, its pending approvals, its outcome.  One lock guards them all; the
driver thread (:mod:`.driver`) makes the transitions, approval and tool
handler threads add and remove pending decisions, the kernel's main thread
asks to stop or decides.  The widget is written by the driver only: other
threads hand it local events through a small inbox the driver drains.

Once the turn has ended, only what a user needs is kept — the
:class:`~codex_notebook.TurnResult`, the static rendering, the ids — and the
widget, the event log and the driver's state are let go.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from ..approvals import APPROVAL_METHODS, answer_for
from ..errors import CodexError, CodexTimeoutError
from ..messages import DEFER, ServerRequest
from ..policies import Approval, Sandbox
from ..results import TurnResult
from .blocks import DECISIONS, HeaderView
from .text import format_duration
from .transcript import LocalEvent
from .widget import TurnView

if TYPE_CHECKING:
    from .registry import ThreadSlot

__all__ = ["TERMINAL", "NotebookTurn", "PendingApproval", "StaticOutput", "TurnOptions"]

#: Phases a turn ends in.
TERMINAL = frozenset({"completed", "interrupted", "failed", "error"})


@dataclass(frozen=True)
class TurnOptions:
    """One cell's options over the session defaults (``%codex config``)."""

    thread: str = "main"
    new: bool = False
    model: str | None = None
    cwd: str | None = None
    sandbox: Sandbox | None = None
    approval: Approval = "ask"
    tools: str = "all"
    wait: bool = False
    output: str | None = None
    schema: type[BaseModel] | None = field(default=None, compare=False)
    timeout: float | None = None

    def over(self, **given: Any) -> TurnOptions:
        """These options with every given value that is not None."""
        return replace(self, **{k: v for k, v in given.items() if v is not None})


@dataclass(frozen=True)
class PendingApproval:
    """A decision the turn waits for: a server approval or code the agent wants to run.

    ``id`` is what :meth:`NotebookTurn.decide` takes; ``request`` is the
    server's request (None for kernel code).
    """

    id: Any
    kind: str  # "command" / "file change" / "permissions" / "python code" / ...
    summary: str
    decisions: tuple[str, ...]
    request: ServerRequest | None = None
    answer: Callable[[str], None] = field(default=lambda decision: None, repr=False)


class StaticOutput:
    """A finished turn's rendering: what ``turn.widget`` shows once the live widget is gone."""

    def __init__(self, bundle: dict[str, str]) -> None:
        self.bundle = bundle

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return dict(self.bundle)

    def __repr__(self) -> str:
        return self.bundle.get("text/plain", "<codex turn>")


class NotebookTurn:
    """A cell's turn: bound to ``-o VAR`` at once, usable while it runs.

    ``result()`` blocks until the end (or ``timeout``) and returns the
    :class:`~codex_notebook.TurnResult`; ``text`` is the answer so far.
    """

    def __init__(
        self,
        *,
        number: int,
        cell: int | None,
        prompt: str,
        options: TurnOptions,
        slot: ThreadSlot,
        badge: str,
        waiter: Callable[[Callable[[], bool], float | None], bool] | None = None,
    ) -> None:
        self.number = number
        self.cell = cell
        self.prompt = prompt
        self.options = options
        self.slot = slot
        self.created_at = time.time()
        self._badge = badge
        self._waiter = waiter  # how a blocking wait waits on the kernel's main thread
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._nudge = threading.Event()  # wakes the driver before its next flush is due
        self._inbox: deque[LocalEvent] = deque()  # appended by any thread, drained by the driver
        self._phase = "queued"
        self._detail = ""
        self._notice = ""
        self._stop = False
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self._thread_id: str | None = None
        self._turn_id: str | None = None
        self._model: str | None = options.model
        self._where: dict[str, Any] = {}  # backend, server version: for provenance
        self._result: TurnResult[Any] | None = None
        self._error: BaseException | None = None
        self._approvals: dict[Any, PendingApproval] = {}
        self._proposals: list[str] = []
        self._jobs: list[Future[Any]] = []  # kernel-tool work queued for this turn
        # The thread running this turn's approved code (the kernel's main thread), else None;
        # written only by that thread, around the code (see running_code).
        self._code_thread: int | None = None
        self._bundle: dict[str, str] | None = None
        self._landed = False  # the final rendering surely reached the cell's output
        self.display: Any = None  # the DisplayHandle of the cell's output
        self.view: TurnView | None = None
        self.view = TurnView(
            self.header(),
            on_stop=self.interrupt,
            on_decision=self._click,
            answer_language="json" if options.schema is not None else None,
        )

    # -- what users read ---------------------------------------------------------------

    @property
    def thread_name(self) -> str:
        return self.options.thread

    @property
    def thread_id(self) -> str | None:
        with self._lock:
            return self._thread_id

    @property
    def turn_id(self) -> str | None:
        with self._lock:
            return self._turn_id

    @property
    def state(self) -> str:
        """queued / starting / running / waiting for approval / completed / interrupted /
        failed / error."""
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self._phase == "running" and any(_live(a) for a in self._approvals.values()):
            return "waiting for approval"
        return self._phase

    @property
    def widget(self) -> Any:
        """The live widget while the turn runs; its static rendering once it ended."""
        with self._lock:
            if self._bundle is not None:
                return StaticOutput(self._bundle)
            return self.view.widget if self.view is not None else None

    @property
    def text(self) -> str:
        """The agent's answer so far (final once done)."""
        with self._lock:
            result, view = self._result, self.view
        if result is not None:
            return result.text
        return view.text if view is not None else ""

    @property
    def error(self) -> BaseException | None:
        """What stopped the turn from running at all (None if it ran)."""
        with self._lock:
            return self._error

    @property
    def elapsed(self) -> float:
        """Seconds from leaving the queue to the end (or now): the one clock of the turn."""
        with self._lock:
            start, end = self.started_at, self.ended_at
        if start is None:
            return 0.0
        return (end or time.time()) - start

    @property
    def elapsed_text(self) -> str:
        """``elapsed`` as the widget writes it (the same milliseconds, the same format)."""
        with self._lock:
            start, end = _ms(self.started_at), _ms(self.ended_at or time.time())
        return format_duration(end - start) if start is not None and end is not None else ""

    @property
    def proposals(self) -> list[str]:
        """Code cells the agent proposed in this turn, oldest first."""
        with self._lock:
            return list(self._proposals)

    @property
    def pending_approvals(self) -> list[PendingApproval]:
        """Decisions the turn waits for, oldest first."""
        with self._lock:
            return [a for a in self._approvals.values() if _live(a)]

    def done(self) -> bool:
        return self._done.is_set()

    @contextmanager
    def running_code(self) -> Iterator[None]:
        """Around the agent's approved code: the turn waits for that code, so the code
        waiting for the turn (``last_turn().result()``) would never end; it gets an error."""
        outer = self._code_thread  # approved code can run inside approved code (a nested wait)
        self._code_thread = threading.get_ident()
        try:
            yield
        finally:
            self._code_thread = outer

    def check_wait_allowed(self) -> None:
        """Raise if this thread is running this turn's approved code (see running_code)."""
        if self._code_thread == threading.get_ident():
            raise CodexError(
                f"turn [{self.number}] waits for this code to finish (the agent asked to run "
                "it): waiting for that turn from inside the code would never end"
            )

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the turn ended and its final rendering was sent. False on timeout.

        On the kernel's main thread this keeps widget clicks and the kernel
        tools' work flowing while it waits (an approval can be clicked).
        """
        self.check_wait_allowed()
        if self._waiter is not None:
            return self._waiter(self._done.is_set, timeout)
        return self._done.wait(timeout)

    def wait_for_approval(self, timeout: float | None = None) -> PendingApproval | None:
        """Block until the turn waits for a decision and return the oldest one; None if the
        turn ended first or ``timeout`` passed.  (Runs the notebook from top to bottom:
        ``turn.decide("accept", turn.wait_for_approval(60).id)``.)"""

        self.check_wait_allowed()

        def asking() -> bool:
            return self._done.is_set() or bool(self.pending_approvals)

        if self._waiter is not None:
            self._waiter(asking, timeout)
        else:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not asking():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._done.wait(0.05 if remaining is None else min(0.05, remaining))
        pending = self.pending_approvals
        return pending[0] if pending else None

    def result(self, timeout: float | None = None) -> TurnResult[Any]:
        """The result, once the turn is over. Raises what stopped it from running at all."""
        if not self.wait(timeout):
            raise CodexTimeoutError(
                f"turn [{self.number}] on thread '{self.thread_name}' is still {self.state} "
                f"after {timeout} s; call .interrupt() to stop it"
            )
        with self._lock:
            result, error = self._result, self._error
        if result is not None:
            return result
        assert error is not None
        raise error

    def interrupt(self) -> None:
        """Stop this turn (or drop it from the queue if it has not started).  Returns at
        once: the turn's driver sends ``turn/interrupt``."""
        with self._lock:
            if self._phase in TERMINAL:
                return
            self._stop = True
        self._wake()

    def decide(self, decision: str, request_id: Any = None) -> None:
        """Answer a pending approval from code, as its button would.

        ``decision``: accept, acceptForSession, decline or cancel (code the
        agent wants to run takes accept or decline).  Without ``request_id``
        the oldest pending approval is answered.
        """
        with self._lock:
            live = [a for a in self._approvals.values() if _live(a)]
        if not live:
            raise CodexError(f"turn [{self.number}] has no pending approval")
        approval = live[0] if request_id is None else self._approvals.get(request_id)
        if approval is None or not _live(approval):
            ids = ", ".join(repr(a.id) for a in live)
            raise CodexError(f"no pending approval with id {request_id!r}; pending: {ids}")
        if decision not in approval.decisions:
            raise CodexError(
                f"{decision!r} is not a decision for this {approval.kind}; "
                f"use one of {', '.join(approval.decisions)}"
            )
        self._answer(approval, decision)

    def __repr__(self) -> str:
        cell = f" cell [{self.cell}]" if self.cell is not None else ""
        return f"<NotebookTurn [{self.number}]{cell} thread={self.thread_name!r} {self.state}>"

    # -- decisions ---------------------------------------------------------------------

    def _click(self, key: Any, decision: str) -> None:
        """Shell thread: a button of the widget."""
        with self._lock:
            approval = self._approvals.get(key)
        if approval is not None and _live(approval) and decision in approval.decisions:
            self._answer(approval, decision)

    def _answer(self, approval: PendingApproval, decision: str) -> None:
        with self._lock:
            if self._approvals.pop(approval.id, None) is None:
                return  # answered meanwhile: exactly once
        approval.answer(decision)
        self._wake()  # the driver shows the decision at once

    def on_request(self, request: ServerRequest) -> Any:
        """Router handler thread: an approval this turn's widget asks a person about.

        Returns the library's DEFER: the answer comes later, from a click or
        :meth:`decide`; nothing waits on a thread meanwhile.  Anything else
        gets the safe refusal (None).
        """
        if request.method not in APPROVAL_METHODS or self.options.approval != "ask":
            return None
        params = request.params_dict

        def answer(decision: str) -> None:
            request.respond(answer_for(request.method, params, decision))

        approval = PendingApproval(
            id=request.id,
            kind=_KINDS.get(request.method, "request"),
            summary=str(params.get("command") or params.get("reason") or request.method),
            decisions=DECISIONS,
            request=request,
            answer=answer,
        )
        with self._lock:
            self._approvals[request.id] = approval
        self._wake()
        return DEFER

    def ask(self, approval: PendingApproval, event: LocalEvent) -> None:
        """Kernel tools: ask the person (a Run / Decline card) — ``approval.answer`` is
        called once with their decision."""
        with self._lock:
            self._approvals[approval.id] = approval
        self.post(event)

    def post(self, event: LocalEvent) -> None:
        """Any thread: show a local event (a tool call's progress) in the widget."""
        self._inbox.append(event)
        self._wake()

    def track(self, job: Future[Any]) -> None:
        """Kernel tools: work queued on the main thread for this turn; cancelled if the
        turn ends before it ran (nothing of a finished turn runs late)."""
        with self._lock:
            if self._phase not in TERMINAL:
                self._jobs = [j for j in self._jobs if not j.done()]
                self._jobs.append(job)
                return
        job.cancel()

    def add_proposal(self, code: str) -> int:
        """Kernel tools: remember a proposed cell; returns its number (1-based)."""
        with self._lock:
            self._proposals.append(code)
            return len(self._proposals)

    def _wake(self) -> None:
        self._nudge.set()
        self.slot.wake()

    # -- the driver thread -------------------------------------------------------------

    def sleep(self, timeout: float) -> None:
        """Until the next flush is due, or someone needs the driver sooner."""
        self._nudge.wait(timeout)
        self._nudge.clear()

    @property
    def stop_requested(self) -> bool:
        with self._lock:
            return self._stop

    def take_events(self) -> list[LocalEvent]:
        events = []
        while self._inbox:
            events.append(self._inbox.popleft())
        return events

    def set_phase(self, phase: str, detail: str = "") -> None:
        with self._lock:
            if self._phase in TERMINAL:
                return
            self._phase = phase
            self._detail = detail
            if phase == "starting" and self.started_at is None:
                self.started_at = time.time()

    def set_notice(self, notice: str) -> None:
        with self._lock:
            self._notice = notice

    def started(
        self, thread_id: str, turn_id: str, model: str | None, where: dict[str, Any]
    ) -> None:
        with self._lock:
            self._thread_id = thread_id
            self._turn_id = turn_id
            self._model = self._model or model
            self._where = where
            if self._phase not in TERMINAL:
                self._phase = "running"

    def forget_settled(self) -> None:
        """Drop approvals the server withdrew or that were answered elsewhere."""
        with self._lock:
            for key, approval in list(self._approvals.items()):
                if approval.request is not None and approval.request.settled:
                    del self._approvals[key]

    def finished(
        self, result: TurnResult[Any] | None, error: BaseException | None, phase: str
    ) -> None:
        with self._lock:
            self._result = result
            self._error = error
            self._phase = phase
            self._detail = ""
            self._approvals.clear()
            jobs, self._jobs = self._jobs, []
            if self.started_at is not None:
                self.ended_at = time.time()
        for job in jobs:
            job.cancel()

    def released(self, bundle: dict[str, str] | None) -> None:
        """The final rendering was sent: let go of the widget and the driver's state."""
        with self._lock:
            self._bundle = bundle
            self.view = None
        self._inbox.clear()
        self._done.set()

    def publish(self, bundle: dict[str, str], running_cell: int | None) -> None:
        """Driver thread: replace the live widget by the static rendering (by display id),
        with provenance metadata.

        An update sent from a thread belongs to whichever cell runs (or ran
        last); headless runners (nbclient, nbconvert) drop it if that cell has
        finished.  It surely lands only while the turn's own cell still runs
        (``--wait``); otherwise :meth:`republish` sends it again later.
        """
        display = self.display
        if display is None:
            return
        display.update(bundle, raw=True, metadata=self.provenance())
        with self._lock:
            self._landed = running_cell is not None and running_cell == self.cell

    def republish(self, running_cell: int | None) -> None:
        """Main thread (``%codex wait``): send the final rendering again from the cell
        running now, unless it already landed; replacing by display id is idempotent."""
        with self._lock:
            bundle, display, landed = self._bundle, self.display, self._landed
        if bundle is None or display is None or landed:
            return
        display.update(bundle, raw=True, metadata=self.provenance())
        with self._lock:
            self._landed = running_cell is not None

    def header(self) -> HeaderView:
        """The widget's header line, from this turn's facts."""
        view = self.view
        usage = view.usage if view is not None else None
        rerouted = view.model if view is not None else None
        with self._lock:
            state = self._state()
            if usage is None and self._result is not None:
                usage = self._result.usage
            return HeaderView(
                thread=self.thread_name,
                status=state,
                detail=self._detail,
                started_at=_ms(self.started_at),
                ended_at=_ms(self.ended_at),
                usage=usage,
                model=rerouted or self._model or "",
                badge=self._badge,
                notice=self._notice,
                can_stop=state not in TERMINAL,
                stopping=self._stop and state not in TERMINAL,
                pending=sum(1 for a in self._approvals.values() if _live(a)),
            )

    def provenance(self) -> dict[str, Any]:
        """Output metadata of the final rendering: where the answer came from."""
        with self._lock:
            result = self._result
            usage = result.usage if result is not None else None
            return {
                "codex_notebook": {
                    "thread_name": self.thread_name,
                    "thread_id": self._thread_id,
                    "turn_id": self._turn_id,
                    "status": self._state(),
                    "model": self._model,
                    **self._where,
                    "proposals": [
                        {"number": n, "code": code} for n, code in enumerate(self._proposals, 1)
                    ],
                    "duration_ms": result.duration_ms if result is not None else None,
                    "usage": usage.__dict__ if usage is not None else None,
                }
            }


_KINDS = {
    "item/commandExecution/requestApproval": "command",
    "execCommandApproval": "command",
    "item/fileChange/requestApproval": "file change",
    "applyPatchApproval": "file change",
    "item/permissions/requestApproval": "permissions",
}


def _live(approval: PendingApproval) -> bool:
    return approval.request is None or not approval.request.settled


def _ms(seconds: float | None) -> int | None:
    return int(seconds * 1000) if seconds is not None else None
