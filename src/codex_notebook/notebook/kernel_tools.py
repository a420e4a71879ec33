"""The agent sees the notebook: the ``notebook`` tools every conversation declares.

``variables``, ``inspect``, ``cells`` and ``last_error`` read the kernel; ``run_python`` runs
code there after the person said yes; ``propose_cell`` shows a cell the person may insert.
The declarations are fixed when a thread starts (codex freezes a thread's tools), so each call
is gated when it arrives, by its cell's ``--tools`` (``all`` / ``read`` / ``none``) and
``--approval``.

Threads: a handler runs on the library's tool pool, never on the reader thread.  Anything
that calls user code (``repr``, ``len``, a frame's ``.head()``, the approved code) runs on the
kernel's main thread through the one FIFO queue of :mod:`.mainthread` — which the notebook's
blocking waits drain, so a ``--wait`` cell whose turn calls a tool cannot deadlock.  A kernel
busy with a long cell answers "kernel busy" after a bounded wait.  What a call did reaches the
cell's widget as local events through its turn's inbox (the driver stays the widget's only
writer).  A ``run_python`` call asks the person, holds no thread while it waits (``DEFER``),
and its code is queued only once approved; a turn that ends first cancels it, so nothing runs
late.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, Final

from ..messages import DEFER
from ..tools import ImageContent, TextContent, Tool, ToolCall, ToolResult, Toolset
from .mainthread import (
    JobCancelledError,
    JobInterruptedError,
    KernelBusyError,
    MainThreadQueue,
    MainThreadTimeoutError,
)
from .tools import calls
from .tools.answer import Answer, finish
from .tools.describe import DEFAULT_VARIABLES
from .tools.kernel_state import DEFAULT_CELLS, CellWatcher
from .transcript import ApprovalDecided, CellProposed, ToolAsked, ToolDone
from .turn import NotebookTurn, PendingApproval

__all__ = ["NAMESPACE", "READ_TOOLS", "TOOL_NAMES", "NotebookTools"]

NAMESPACE: Final = "notebook"
READ_TOOLS: Final = frozenset({"variables", "inspect", "cells", "last_error", "propose_cell"})
TOOL_NAMES: Final = ("variables", "inspect", "cells", "last_error", "run_python", "propose_cell")
#: How long a read waits for the kernel's main thread before answering "kernel busy".
KERNEL_WAIT_S: Final = 5.0
#: ... and how long a read that started may run before its answer is given up.
READ_RUN_S: Final = 30.0

_DESCRIPTION = (
    "The user's live Jupyter kernel: the variables their notebook built, its cells, the last "
    "error, and running Python there (each run is shown to the user and needs their OK). Use "
    "these to see the user's data instead of guessing; propose code as a cell they can insert."
)
_TOOLS: dict[str, tuple[str, dict[str, Any]]] = {
    "variables": (
        "List the user's variables in the live kernel: name, type, shape or length, and a short "
        "value. Modules are left out. Secrets are never shown.",
        {
            "type": "object",
            "properties": {
                "pattern": {"type": "string", "description": "glob on the name, e.g. 'df*'"},
                "limit": {"type": "integer", "description": "at most this many (default 50)"},
            },
            "additionalProperties": False,
        },
    ),
    "inspect": (
        "Describe one variable or dotted attribute of the kernel (e.g. 'df', 'model.coef_'): "
        "type, shape, dtypes and the first rows of data frames, statistics of arrays, a sample "
        "of containers, the signature and doc of callables.",
        {
            "type": "object",
            "properties": {"name": {"type": "string", "description": "a variable or a.b.c"}},
            "required": ["name"],
            "additionalProperties": False,
        },
    ),
    "cells": (
        "The notebook's last executed cells: execution count, source, and the text of their "
        "result.",
        {
            "type": "object",
            "properties": {"last": {"type": "integer", "description": "how many (default 5)"}},
            "additionalProperties": False,
        },
    ),
    "last_error": (
        "The last exception a cell raised: its type and message, the traceback as text, and the "
        "source of the cell it came from.",
        {"type": "object", "properties": {}, "additionalProperties": False},
    ),
    "run_python": (
        "Run Python code in the user's kernel, in their namespace (the user is asked first and "
        "may decline). Returns stdout, stderr, the last expression's value or the traceback, and "
        "the variables it created or changed. Prefer small, read-only code.",
        {
            "type": "object",
            "properties": {"code": {"type": "string", "description": "Python source"}},
            "required": ["code"],
            "additionalProperties": False,
        },
    ),
    "propose_cell": (
        "Propose a code cell to the user (shown with 'Insert below'; nothing runs). Use it for "
        "fixes and for code the user should keep in the notebook.",
        {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "the complete cell"},
                "explanation": {"type": "string", "description": "one or two sentences"},
            },
            "required": ["code"],
            "additionalProperties": False,
        },
    ),
}


class NotebookTools:
    """The ``notebook`` toolset and its handlers for one kernel.

    ``turn_for(thread_id)`` finds the cell's turn a call belongs to (one active turn per
    thread); everything else it touches is thread-safe (the queue, the turn's own lock).
    """

    def __init__(
        self,
        shell: Any,
        queue: MainThreadQueue,
        watcher: CellWatcher,
        turn_for: Callable[[str], NotebookTurn | None],
    ) -> None:
        self._shell = shell
        self._queue = queue
        self._watcher = watcher
        self._turn_for = turn_for
        handlers: dict[str, Callable[[ToolCall], Any]] = {
            "variables": lambda call: self._read(call, self._variables),
            "inspect": lambda call: self._read(call, self._inspect),
            "cells": lambda call: self._read(call, self._cells),
            "last_error": lambda call: self._read(call, self._last_error),
            "run_python": self._run_python,
            "propose_cell": self._propose_cell,
        }
        self.toolset = Toolset(
            namespace=NAMESPACE,
            description=_DESCRIPTION,
            tools=[
                Tool(
                    name,
                    _TOOLS[name][0],
                    _TOOLS[name][1],
                    handlers[name],
                    timeout=None if name == "run_python" else KERNEL_WAIT_S + READ_RUN_S + 5,
                )
                for name in TOOL_NAMES
            ],
        )

    # -- gates

    def _gate(self, call: ToolCall) -> tuple[NotebookTurn | None, ToolResult | None]:
        turn = self._turn_for(call.thread_id)
        if turn is None:
            return None, ToolResult.error("no notebook cell is running this conversation now")
        level = turn.options.tools
        allowed = level == "all" or (level == "read" and call.tool in READ_TOOLS)
        if not allowed:
            why = "all notebook tools" if level == "none" else f"{call.tool} (--tools read)"
            return turn, ToolResult.error(f"the user turned off {why} for this cell")
        return turn, None

    # -- reads (tool pool thread; the work on the kernel's main thread)

    def _read(self, call: ToolCall, read: Callable[[ToolCall], Answer]) -> ToolResult:
        _turn, refusal = self._gate(call)
        if refusal is not None:
            return refusal
        try:
            answer = self._queue.call(
                lambda: self._guarded(call, read), timeout=KERNEL_WAIT_S, run_timeout=READ_RUN_S
            )
        except KernelBusyError:
            return ToolResult.error(
                "the kernel is busy running a cell; ask again when it is idle, or answer "
                "without looking"
            )
        except (MainThreadTimeoutError, JobInterruptedError, JobCancelledError) as exc:
            return ToolResult.error(str(exc))
        return _result(answer)

    def _guarded(self, call: ToolCall, read: Callable[[ToolCall], Answer]) -> Answer:
        """Main thread: ``read``, or an error whose message is scrubbed like every answer
        (an exception's text can carry the user's data)."""
        try:
            return read(call)
        except Exception as exc:
            text = f"{call.tool} failed: {type(exc).__name__}: {exc}"
            return Answer.error(finish(text, 1_000, scrub=calls.scrubber_for(self._shell)))

    def _variables(self, call: ToolCall) -> Answer:
        args = call.arguments
        return calls.variables(
            self._shell,
            pattern=args.get("pattern"),
            limit=args.get("limit", DEFAULT_VARIABLES),
        )

    def _inspect(self, call: ToolCall) -> Answer:
        return calls.inspect_name(self._shell, call.arguments.get("name"))

    def _cells(self, call: ToolCall) -> Answer:
        last = call.arguments.get("last", DEFAULT_CELLS)
        return calls.cells(self._shell, last=last, watcher=self._watcher)

    def _last_error(self, call: ToolCall) -> Answer:
        return calls.last_error(self._shell, watcher=self._watcher)

    # -- run_python: ask, then run on the main thread

    def _run_python(self, call: ToolCall) -> Any:
        turn, refusal = self._gate(call)
        if refusal is not None or turn is None:
            return refusal
        code = call.arguments.get("code")
        if not isinstance(code, str) or not code.strip():
            return ToolResult.error("code must be a non-empty string of Python source")
        if turn.options.approval == "deny":
            turn.post(ToolDone(call.call_id, False, "not run: --approval deny never asks"))
            return ToolResult.error(
                "the user's setting for this cell (--approval deny) does not allow running "
                "code in their kernel; carry on without it"
            )

        def answer(decision: str) -> None:
            self._decided(turn, call, code, decision)

        approval = PendingApproval(
            id=call.call_id,
            kind="python code",
            summary=code,
            decisions=("accept", "decline"),
            request=call.request,
            answer=answer,
        )
        turn.ask(approval, ToolAsked(call.call_id, key=call.call_id, code=code))
        return DEFER

    def _decided(self, turn: NotebookTurn, call: ToolCall, code: str, decision: str) -> None:
        """A click (shell thread) or ``turn.decide`` (main thread): run it, or say no."""
        turn.post(ApprovalDecided(call.call_id, decision))
        if decision != "accept":
            turn.post(ToolDone(call.call_id, False, "declined by you", decision="decline"))
            call.respond(ToolResult.error("the user declined to run this code"))
            return
        try:
            future = self._queue.submit(lambda: self._run(turn, call, code))
        except (KernelBusyError, JobCancelledError) as exc:
            turn.post(ToolDone(call.call_id, False, str(exc), decision="accept"))
            call.respond(ToolResult.error(str(exc)))
            return
        turn.track(future)  # cancelled if the turn ends before the kernel gets to it

    def _run(self, turn: NotebookTurn, call: ToolCall, code: str) -> None:
        """Main thread: the approved code, in the user's namespace (never inside their cell).

        The call is answered whatever happens: a ``run_python`` call has no timeout, so a
        run stopped outside the code itself (an interrupt landing around it) would otherwise
        hold the turn until someone pressed Stop.
        """
        if call.settled:  # the turn ended while the job waited: nothing runs late
            return
        try:
            with turn.running_code():
                outcome = calls.run_python(self._shell, code)
            answer = outcome.answer()
        except BaseException as exc:
            why = f"the run was stopped in the kernel ({type(exc).__name__})"
            turn.post(ToolDone(call.call_id, False, why, decision="accept"))
            call.respond(ToolResult.error(why))
            raise
        summary = answer.text.strip().partition("\n")[0]
        names = (*outcome.created, *outcome.changed, *outcome.deleted)
        turn.post(ToolDone(call.call_id, answer.ok, summary, names, decision="accept"))
        call.respond(_result(answer))

    # -- propose_cell

    def _propose_cell(self, call: ToolCall) -> ToolResult:
        turn, refusal = self._gate(call)
        if refusal is not None or turn is None:
            return refusal or ToolResult.error("no notebook cell is running this conversation")
        code = call.arguments.get("code")
        if not isinstance(code, str) or not code.strip():
            return ToolResult.error("code must be a non-empty string: the whole cell")
        explanation = call.arguments.get("explanation")
        explanation = explanation if isinstance(explanation, str) else ""
        number = turn.add_proposal(code)
        turn.post(CellProposed(call.call_id, number, code, explanation))
        return ToolResult.text(
            f"Shown to the user as proposed cell {number}, with an 'Insert below' button and "
            f"`%codex insert {number}`. Nothing ran; do not assume it was inserted."
        )


def _result(answer: Answer) -> ToolResult:
    content: list[TextContent | ImageContent] = [TextContent(answer.text)]
    for url in answer.images:
        head, _, data = url.partition(",")
        if head == "data:image/png;base64":
            content.append(ImageContent(base64.b64decode(data)))
    return ToolResult(tuple(content), answer.ok)
