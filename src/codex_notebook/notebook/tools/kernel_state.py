"""The kernel's history for the ``cells`` and ``last_error`` tools.

Measured on IPython 9.18 / ipykernel 7.4 (bench/RESULTS.md, "Kernel tools"):

- ``shell.execution_count`` is incremented *before* a cell runs (``pre_run_cell`` already sees
  N + 1 for cell N) and stays N + 1 after it; the raw source is stored in
  ``history_manager.input_hist_raw[N]`` before execution.  So counts alone cannot tell whether
  cell N is still running (a ``%%codex --wait`` cell asking for ``cells``) or finished: the
  :class:`CellWatcher`'s ``pre_run_cell`` / ``post_run_cell`` hooks can.
- ``post_run_cell`` gets the cell's own number (``result.execution_count``), its source
  (``result.info.raw_cell``), its notebook cell id (``result.info.cell_id``, ipykernel) and the
  exception (``error_in_exec``, or ``error_before_exec`` for a ``SyntaxError``).  That is how
  :class:`CellWatcher` knows which cell raised last.  ``sys.last_value`` (``sys.last_exc``) is
  the fallback for errors raised before the watcher was installed; the cell is then found from
  the traceback's file names (IPython's compiler maps them to cell numbers).
- IPython keeps sources and results (``Out``), not printed output or displays.

Decided: a ``%%codex`` cell's prompt is not repeated to the agent (it already received it as
a message, and prompts of other conversations are not its business): the cell shows its
``%%codex`` line and a note.  Everything is capped and scrubbed of secrets.

Main thread: hooks run there, and tools read through the main-thread queue (``Out`` reprs are
user code).  The watcher's two fields are written only by its hooks.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from .answer import MAX_ANSWER_CHARS, Answer, finish
from .budget import BudgetExceeded, time_limit
from .secrets import Scrubber
from .tracebacks import exception_line, format_exception

__all__ = [
    "DEFAULT_CELLS",
    "MAX_CELLS",
    "MAX_CELL_RESULT",
    "MAX_CELL_SOURCE",
    "MAX_TRACEBACK_CHARS",
    "CellRecord",
    "CellWatcher",
    "ErrorRecord",
    "FormattedError",
    "RunningCells",
    "cells_answer",
    "find_last_error",
    "format_error",
    "last_error_answer",
    "recent_cells",
]

DEFAULT_CELLS: Final = 5
MAX_CELLS: Final = 20
#: Longest cell source / result text shown per cell.
MAX_CELL_SOURCE: Final = 1_500
MAX_CELL_RESULT: Final = 800
#: Longest traceback in a ``last_error`` answer (head and tail are kept; the tail matters most).
MAX_TRACEBACK_CHARS: Final = 3_500
#: Longest failing-cell source in a ``last_error`` answer.
MAX_ERROR_SOURCE: Final = 1_500

_CODEX_MAGIC: Final = "%%codex"
_PROMPT_OMITTED: Final = "[prompt omitted: it was sent to you as a message]"


@dataclass(frozen=True)
class ErrorRecord:
    """The last exception a user cell raised, and where."""

    exception: BaseException
    execution_count: int | None
    source: str | None
    cell_id: str | None = None
    #: The execution count of a later run of the same notebook cell that raised nothing.
    fixed_by: int | None = None


@dataclass(frozen=True)
class _Running:
    raw_cell: str
    cell_id: str | None
    count: int | None  # the number the notebook shows for it (None: not a numbered cell)


E = TypeVar("E")


class RunningCells(Generic[E]):
    """The cells executing now, outermost first (``run_cell`` inside a cell nests), each with
    an entry of the caller's.  Fed by IPython's ``pre_run_cell`` / ``post_run_cell`` hooks on
    the kernel's main thread, and read there.

    The hooks are not always paired: an empty cell gets ``post_run_cell`` only, and a
    cancelled async cell's ``post_run_cell`` gets None.  So a cell is matched by its
    ``ExecutionInfo`` (``post_run_cell``'s ``result.info`` is the object ``pre_run_cell``
    got); an end nobody started is ignored, and an end without a result ends the innermost.
    """

    def __init__(self) -> None:
        self._cells: list[tuple[object, E]] = []

    def started(self, info: object, entry: E) -> None:
        self._cells.append((info, entry))

    def ended(self, result: object) -> None:
        if result is None:
            if self._cells:
                self._cells.pop()
            return
        info = getattr(result, "info", None)
        for index in range(len(self._cells) - 1, -1, -1):
            if self._cells[index][0] is info:
                del self._cells[index:]  # and any inner one whose end was lost
                return

    def outermost(self) -> E | None:
        """The entry of the cell the notebook shows as running (None: no cell runs)."""
        return self._cells[0][1] if self._cells else None

    def __bool__(self) -> bool:
        return bool(self._cells)


class CellWatcher:
    """Knows which cell is running and which cell raised last (IPython event hooks).

    ``install()`` registers ``pre_run_cell`` / ``post_run_cell`` hooks (idempotent);
    ``uninstall()`` removes them.  Hooks never raise.  State is written by the hooks on the
    kernel's main thread and read there too.
    """

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self._running: RunningCells[_Running] = RunningCells()
        self._error: ErrorRecord | None = None
        self._installed = False

    def install(self) -> CellWatcher:
        if not self._installed:
            self.shell.events.register("pre_run_cell", self._pre_run_cell)
            self.shell.events.register("post_run_cell", self._post_run_cell)
            self._installed = True
        return self

    def uninstall(self) -> None:
        if self._installed:
            for event, hook in (
                ("pre_run_cell", self._pre_run_cell),
                ("post_run_cell", self._post_run_cell),
            ):
                with contextlib.suppress(ValueError):
                    self.shell.events.unregister(event, hook)
            self._installed = False

    @property
    def running(self) -> bool:
        """Is a cell executing right now (for example a ``%%codex --wait`` cell)?"""
        return bool(self._running)

    def running_count(self) -> int | None:
        """The execution count of the cell running now, as the notebook shows it (None when
        no cell runs, or the running one is not numbered: ``store_history=False``).

        While a cell runs IPython's ``execution_count`` is already the next cell's
        number: the hook records the right one when the cell starts.
        """
        running = self._running.outermost()
        return running.count if running is not None else None

    @property
    def last_error(self) -> ErrorRecord | None:
        return self._error

    def _pre_run_cell(self, info: Any) -> None:
        try:
            stored = getattr(info, "store_history", True)
            count = self.shell.execution_count - 1 if stored else None
            running = _Running(str(info.raw_cell), getattr(info, "cell_id", None), count)
        except Exception:
            running = _Running("", None, None)
        self._running.started(info, running)

    def _post_run_cell(self, result: Any) -> None:
        self._running.ended(result)
        try:
            error = result.error_in_exec or result.error_before_exec
            info = getattr(result, "info", None)
            cell_id = getattr(info, "cell_id", None)
            if error is not None:
                self._error = ErrorRecord(
                    exception=error,
                    execution_count=result.execution_count,
                    source=getattr(info, "raw_cell", None),
                    cell_id=cell_id,
                )
            elif (
                self._error is not None
                and cell_id is not None
                and cell_id == self._error.cell_id
                and self._error.fixed_by is None
            ):
                self._error = ErrorRecord(
                    self._error.exception,
                    self._error.execution_count,
                    self._error.source,
                    cell_id,
                    fixed_by=result.execution_count,
                )
        except Exception:
            pass


def _raw_history(shell: Any) -> list[str]:
    manager = getattr(shell, "history_manager", None)
    raw = getattr(manager, "input_hist_raw", None)
    if isinstance(raw, list):
        return raw
    ih = shell.user_ns.get("_ih", [""])
    return ih if isinstance(ih, list) else [""]


# --- cells ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CellRecord:
    """One executed cell as the ``cells`` tool shows it."""

    execution_count: int
    source: str
    result: str | None
    running: bool = False


def _shown_source(source: str) -> str:
    stripped = source.lstrip()
    if stripped.startswith(_CODEX_MAGIC) and (
        len(stripped) == len(_CODEX_MAGIC) or stripped[len(_CODEX_MAGIC)] in " \t\n"
    ):
        first = stripped.split("\n", 1)[0].rstrip()
        return f"{first}\n{_PROMPT_OMITTED}"
    return source


def recent_cells(
    shell: Any,
    *,
    last: int = DEFAULT_CELLS,
    watcher: CellWatcher | None = None,
    result_text: Callable[[object], str] | None = None,
) -> list[CellRecord]:
    """The last ``last`` cells, oldest first, with their ``Out`` results as text.

    ``result_text`` turns a result into text (default: the notebook's ``text/plain``); it
    calls user code, so this runs on the main thread.  Sources are raw (as typed), not yet
    capped or scrubbed; ``%%codex`` prompts are replaced by a note.
    """
    history = _raw_history(shell)
    count = len(history) - 1
    if count < 1:
        return []
    last = max(1, min(int(last), MAX_CELLS))
    running = watcher.running_count() if watcher is not None else None
    outputs = shell.user_ns.get("Out", {})
    outputs = outputs if isinstance(outputs, dict) else {}
    to_text = result_text or (lambda value: plain_text(shell, value))
    records = []
    for n in range(max(1, count - last + 1), count + 1):
        result = None
        if n in outputs:
            result = to_text(outputs[n])
        records.append(CellRecord(n, _shown_source(str(history[n])), result, running == n))
    return records


def plain_text(shell: Any, value: object) -> str:
    """The ``text/plain`` the notebook shows for a value (its repr as IPython formats it)."""
    formatter = getattr(shell, "display_formatter", None)
    try:
        if formatter is not None:
            data, _metadata = formatter.format(value, include={"text/plain"})
            text = data.get("text/plain")
            if isinstance(text, str):
                return text
        return repr(value)
    except Exception as exc:
        return f"<repr failed: {type(exc).__name__}: {exc}>"


def cells_answer(
    shell: Any,
    *,
    last: int = DEFAULT_CELLS,
    watcher: CellWatcher | None = None,
    scrubber: Scrubber | None = None,
    budget: float | None = 2.0,
) -> Answer:
    """The ``cells`` answer: recent cells with sources and results, capped and scrubbed."""
    scrub = scrubber or Scrubber()
    texts: dict[int, str] = {}  # by id(value): results already formatted before the budget ran out
    budget_out = False

    def result_text(value: object) -> str:
        if id(value) not in texts:
            if budget_out:
                return "[not shown: the time budget ran out]"
            texts[id(value)] = plain_text(shell, value)
        return texts[id(value)]

    try:
        with time_limit(budget):
            records = recent_cells(shell, last=last, watcher=watcher, result_text=result_text)
    except BudgetExceeded:
        budget_out = True
        records = recent_cells(shell, last=last, watcher=watcher, result_text=result_text)
    total = len(_raw_history(shell)) - 1
    if not records:
        return Answer("No cells have run in this kernel yet.")
    first, final = records[0].execution_count, records[-1].execution_count
    parts = [
        f"Cells [{first}] to [{final}] of {total}, oldest first. IPython keeps each cell's "
        "source and its result (Out); printed output and displays are not kept."
    ]
    for record in records:
        label = f"[{record.execution_count}]" + (" (running now)" if record.running else "")
        parts.append(f"\nIn {label}:")
        parts.append(finish(record.source, MAX_CELL_SOURCE, scrub=scrub, keep="middle"))
        if record.result is not None:
            parts.append(f"Out[{record.execution_count}]:")
            parts.append(finish(record.result, MAX_CELL_RESULT, scrub=scrub, keep="middle"))
    text = finish("\n".join(parts), MAX_ANSWER_CHARS, scrub=scrub, keep="tail", what="characters")
    return Answer(text)


# --- the last error ---------------------------------------------------------------------------


def find_last_error(shell: Any, watcher: CellWatcher | None = None) -> ErrorRecord | None:
    """The last exception a user cell raised: the watcher's record, else ``sys.last_value``."""
    if watcher is not None and watcher.last_error is not None:
        return watcher.last_error
    exc = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    if not isinstance(exc, BaseException):
        return None
    count = _cell_of(shell, exc)
    history = _raw_history(shell)
    source = str(history[count]) if count is not None and 0 < count < len(history) else None
    return ErrorRecord(exc, count, source)


def _cell_of(shell: Any, exc: BaseException) -> int | None:
    """The cell an exception was raised from, found through IPython's file-name map."""
    compiler = getattr(shell, "compile", None)
    mapping = getattr(compiler, "_filename_map", None)
    if not isinstance(mapping, dict):
        return None
    if isinstance(exc, SyntaxError) and exc.filename in mapping:
        return int(mapping[exc.filename])
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename in mapping:
            return int(mapping[filename])  # the outermost cell frame: the cell that ran
        tb = tb.tb_next
    return None


@dataclass(frozen=True)
class FormattedError:
    """An :class:`ErrorRecord` as text (not yet capped or scrubbed) — for ``%codex fix`` too."""

    type_name: str
    message: str
    traceback: str
    execution_count: int | None
    source: str | None
    cell_id: str | None
    fixed_by: int | None


def format_error(shell: Any, record: ErrorRecord) -> FormattedError:
    """Format the exception of ``record`` as plain text (main thread)."""
    exc = record.exception
    line = exception_line(exc)
    message = line.split(": ", 1)[1] if ": " in line else ""
    return FormattedError(
        type_name=type(exc).__name__,
        message=message,
        traceback=format_exception(exc, shell=shell),
        execution_count=record.execution_count,
        source=record.source,
        cell_id=record.cell_id,
        fixed_by=record.fixed_by,
    )


def last_error_answer(
    shell: Any,
    *,
    watcher: CellWatcher | None = None,
    scrubber: Scrubber | None = None,
) -> Answer:
    """The ``last_error`` answer: type, message, the failing cell and its traceback."""
    scrub = scrubber or Scrubber()
    record = find_last_error(shell, watcher)
    if record is None:
        return Answer("No cell has raised an exception in this kernel.")
    error = format_error(shell, record)
    head = f"{error.type_name}: {error.message}" if error.message else error.type_name
    parts = [finish(head, 600, scrub=scrub)]
    current = len(_raw_history(shell)) - 1
    if error.execution_count is not None:
        since = current - error.execution_count
        where = f"Raised by cell [{error.execution_count}]"
        if since > 0:
            where += f"; {since} cell{'s' if since != 1 else ''} ran after it"
        if error.fixed_by is not None:
            where += f"; the same notebook cell ran again without error as [{error.fixed_by}]"
        parts.append(where + ".")
    else:
        parts.append("The cell it came from is not known.")
    if error.source is not None:
        parts.append("Cell source:")
        parts.append(finish(error.source, MAX_ERROR_SOURCE, scrub=scrub, keep="middle"))
    parts.append("Traceback:")
    parts.append(finish(error.traceback, MAX_TRACEBACK_CHARS, scrub=scrub, keep="middle"))
    return Answer(finish("\n".join(parts), MAX_ANSWER_CHARS, scrub=scrub, keep="middle"))
