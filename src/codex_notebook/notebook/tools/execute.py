"""Run the agent's code in the user namespace (the ``run_python`` tool), captured, off the record.

Decided by measurement (bench/RESULTS.md, "Kernel tools"): the code is compiled and
``exec``'d here rather than through ``shell.run_cell``.  ``run_cell(store_history=False)``
still fires ``pre/post_run_cell`` hooks, sends the last value through the display hook — which
overwrote the user's ``Out[N]`` and ``_`` in the measurement and, in a kernel, publishes an
``execute_result`` into whatever cell is current — and ``silent=True`` drops the last value
altogether.  Compiling ourselves:

- keeps IPython syntax (``%magic``, ``!cmd``) through ``shell.transform_cell`` (a pure string
  transform), then runs the code in ``shell.user_ns`` like a cell, evaluating a trailing
  expression separately so its value can be shown (as the notebook's ``text/plain``);
- leaves ``In``/``Out``/``_``, ``execution_count``, ``sys.last_*`` and the event hooks alone, so
  the agent's code never becomes "the last error" or a numbered cell;
- captures ``sys.stdout``/``sys.stderr`` (bounded: head and tail kept) and rich displays
  (``display()`` goes to a capturing publisher, reduced to ``text/plain``), so nothing lands
  in whichever cell is current.  Not captured: writes straight to file descriptors 1/2
  (C extensions, ``os.system``) and ``logging`` handlers that hold the old stream;
- names created, rebound (by identity) or deleted are reported, so the widget can say
  "created ``x``, changed ``df``".  In-place mutation (``df.drop(..., inplace=True)``) keeps
  the identity and is not reported;
- pyplot figures the code opened are described (with a small PNG when cheap) and closed, so
  the inline backend does not show them in the user's next cell;
- ``SystemExit`` is reported, never exits the kernel; ``KeyboardInterrupt`` (the kernel's
  interrupt) and the time budget stop the code and are reported;
- ``input()`` / ``getpass()`` raise at once: in a kernel they would prompt through whichever
  cell is current and block the main thread until someone answered;
- top-level ``await`` is refused with a clear message (the kernel's event loop is running).

Must run on the kernel's main thread (through :mod:`codex_notebook.notebook.mainthread`).
"""

from __future__ import annotations

import ast
import builtins
import getpass
import io
import itertools
import linecache
import sys
import time
import traceback
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from .answer import MAX_ANSWER_CHARS, Answer, finish
from .budget import BudgetExceeded, Deadline, time_limit
from .figures import (
    MAX_PNG_BYTES,
    close_figures,
    figure_lines,
    open_figure_numbers,
    pyplot_figure,
    render_png,
)
from .kernel_state import plain_text
from .secrets import Scrubber
from .tracebacks import exception_line, format_exception

__all__ = [
    "MAX_CAPTURE_CHARS",
    "MAX_RESULT_CHARS",
    "MAX_STREAM_CHARS",
    "MAX_TRACEBACK_CHARS",
    "RunOutcome",
    "run_code",
]

#: Characters of each captured stream held in memory (half head, half tail).
MAX_CAPTURE_CHARS: Final = 64_000
#: Characters of stdout / stderr in the answer (the tail is kept: the end is what matters).
MAX_STREAM_CHARS: Final = 2_000
#: Characters of the result repr and of all displays together.
MAX_RESULT_CHARS: Final = 1_500
#: Characters of the traceback.
MAX_TRACEBACK_CHARS: Final = 3_000
#: Run sources kept in ``linecache`` (for tracebacks and ``inspect.getsource`` of functions the
#: agent defined); older ones are dropped.
_KEPT_SOURCES: Final = 256

Status = Literal["ok", "error", "interrupted", "timeout"]

_run_numbers = itertools.count(1)
_sources: deque[str] = deque()


@dataclass(frozen=True)
class RunOutcome:
    """What running the agent's code did.  Every text is capped and scrubbed of secrets."""

    status: Status
    stdout: str = ""
    stderr: str = ""
    #: The notebook's ``text/plain`` for the value of a trailing expression (None: no value).
    result: str | None = None
    #: ``text/plain`` of each ``display()`` call.
    displays: tuple[str, ...] = ()
    #: ``TypeError: message`` when the code raised, was interrupted or ran out of time.
    error: str | None = None
    #: The plain-text traceback.
    traceback: str | None = None
    created: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    #: One line per pyplot figure the code opened (they were closed afterwards).
    figures: tuple[str, ...] = ()
    #: At most one small PNG data URL (a figure, or an image the code displayed).
    images: tuple[str, ...] = field(default=(), repr=False)
    duration_s: float = 0.0

    def changes(self) -> str:
        """``created `x`, changed `df`, deleted `tmp``` — empty when nothing changed."""
        parts = []
        for verb, names in (
            ("created", self.created),
            ("changed", self.changed),
            ("deleted", self.deleted),
        ):
            if names:
                parts.append(f"{verb} " + ", ".join(f"`{n}`" for n in names))
        return ", ".join(parts)

    def answer(self) -> Answer:
        """The ``run_python`` answer for the model."""
        head = {
            "ok": "The code ran",
            "error": "ERROR: the code raised an exception",
            "interrupted": "ERROR: the code was interrupted (the user interrupted the kernel)",
            "timeout": "ERROR: the code was stopped: it ran past its time budget",
        }[self.status]
        parts = [f"{head} ({self.duration_s:.2f} s)."]
        changes = self.changes()
        parts.append(
            f"Variables: {changes}." if changes else "No variables were created or rebound."
        )
        if self.stdout:
            parts += ["stdout:", self.stdout]
        if self.stderr:
            parts += ["stderr:", self.stderr]
        for i, shown in enumerate(self.displays, 1):
            parts += [f"display {i}:", shown]
        if self.result is not None:
            parts += ["result:", self.result]
        if self.figures:
            parts += ["figures (closed after the run; the user does not see them):", *self.figures]
        if self.error:
            parts.append(f"error: {self.error}")
        if self.traceback:
            parts += ["traceback:", self.traceback]
        text = finish("\n".join(parts), MAX_ANSWER_CHARS, scrub=lambda s: s, keep="middle")
        return Answer(text, images=self.images[:1], ok=self.status == "ok")


class _BoundedText(io.TextIOBase):
    """A write-only text stream that keeps the first and last ``limit // 2`` characters."""

    def __init__(self, limit: int = MAX_CAPTURE_CHARS) -> None:
        super().__init__()
        self._half = limit // 2
        self._head: list[str] = []
        self._head_len = 0
        self._tail: deque[str] = deque()
        self._tail_len = 0
        self.total = 0

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        self.total += len(s)
        if self._head_len < self._half:
            take = s[: self._half - self._head_len]
            self._head.append(take)
            self._head_len += len(take)
            s = s[len(take) :]
        if s:
            self._tail.append(s)
            self._tail_len += len(s)
            while self._tail_len - len(self._tail[0]) >= self._half:
                self._tail_len -= len(self._tail.popleft())
        return self.total

    def text(self) -> str:
        head = "".join(self._head)
        tail = "".join(self._tail)
        dropped = self.total - len(head) - len(tail)
        if dropped > 0:
            return f"{head}\n[… {dropped:,} characters of output not kept …]\n{tail}"
        return head + tail


@contextmanager
def _captured(shell: Any) -> Iterator[tuple[_BoundedText, _BoundedText, list[dict[str, Any]]]]:
    """Capture stdout, stderr and displays; make ``input()``/``getpass()`` fail fast.

    In a kernel ``input()`` asks the frontend through the current cell and blocks the main
    thread until someone answers: the agent's code must not prompt the user that way.
    """
    from IPython.core.displaypub import CapturingDisplayPublisher

    out, err = _BoundedText(), _BoundedText()
    publisher = CapturingDisplayPublisher()  # type: ignore[no-untyped-call]
    saved = sys.stdout, sys.stderr, getattr(shell, "display_pub", None)
    saved_input, saved_getpass = builtins.input, getpass.getpass
    sys.stdout, sys.stderr = out, err
    builtins.input = _no_input
    setattr(getpass, "getpass", _no_input)  # noqa: B010 - mypy: a module function
    if saved[2] is not None:
        shell.display_pub = publisher
    try:
        yield out, err, publisher.outputs
    finally:
        sys.stdout, sys.stderr = saved[0], saved[1]
        builtins.input = saved_input
        setattr(getpass, "getpass", saved_getpass)  # noqa: B010
        if saved[2] is not None:
            shell.display_pub = saved[2]


def _no_input(prompt: object = "", *args: object, **kwargs: object) -> str:
    raise RuntimeError(
        "input() and getpass() are not available to run_python: the agent cannot prompt the "
        "user; ask in your reply instead"
    )


def _register_source(filename: str, source: str) -> None:
    """Make the code's lines visible to tracebacks and ``inspect.getsource``."""
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    _sources.append(filename)
    while len(_sources) > _KEPT_SOURCES:
        linecache.cache.pop(_sources.popleft(), None)


def _compile(source: str, filename: str) -> tuple[Any, Any | None]:
    """Compile to (body, trailing expression or None), like a cell with ``last_expr``."""
    tree = ast.parse(source, filename=filename, mode="exec")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body[-1].value)
        del tree.body[-1]
    body = compile(tree, filename, "exec", dont_inherit=True)
    expr = compile(last, filename, "eval", dont_inherit=True) if last is not None else None
    return body, expr


def _changes(
    before: dict[str, object], after: dict[str, object]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    def visible(name: str) -> bool:
        return not name.startswith("__")

    created = tuple(n for n in after if visible(n) and n not in before)
    changed = tuple(n for n in after if visible(n) and n in before and after[n] is not before[n])
    deleted = tuple(n for n in before if visible(n) and n not in after)
    return created, changed, deleted


def run_code(
    shell: Any,
    code: str,
    *,
    budget: float | None = None,
    scrubber: Scrubber | None = None,
) -> RunOutcome:
    """Run ``code`` in ``shell.user_ns`` as the agent's ``run_python`` and report what happened.

    ``budget`` (seconds, None for none) stops code that runs too long (see :mod:`.budget`).
    ``scrubber`` defaults to one built from the namespace before and after the run, so secrets
    the code created, deleted or rebound are scrubbed too.  Never raises for anything the code does.
    """
    number = next(_run_numbers)
    filename = f"<run_python #{number}>"
    started = time.monotonic()
    try:
        source = shell.transform_cell(code) if hasattr(shell, "transform_cell") else code
        _register_source(filename, source)
        body, expr = _compile(source, filename)
    except SyntaxError as exc:
        return _syntax_outcome(shell, exc, scrubber)
    except Exception as exc:  # an input transformer failed
        return _finish(
            shell,
            scrubber,
            status="error",
            started=started,
            error=exception_line(exc),
            traceback=format_exception(exc, shell=shell),
        )

    namespace = shell.user_ns
    before = dict(namespace)
    figures_before = open_figure_numbers()
    exit_now = getattr(shell, "exit_now", None)
    payloads_before = _payloads(shell)
    status: Status = "ok"
    value: object = None
    result_text: str | None = None
    error: BaseException | None = None
    figure_notes: list[str] = []
    images: list[str] = []
    with _captured(shell) as (out, err, displays):
        try:
            with time_limit(budget):
                exec(body, shell.user_global_ns, namespace)
                if expr is not None:
                    value = eval(expr, shell.user_global_ns, namespace)
                    if value is not None:
                        result_text = plain_text(shell, value)
                figure_notes, images = _new_figures(figures_before)
        except BudgetExceeded as exc:
            status, error = "timeout", exc
        except KeyboardInterrupt as exc:
            status, error = "interrupted", exc
        except SystemExit as exc:
            status, error = "error", exc
        except BaseException as exc:  # the agent's code failed: report, never propagate
            status, error = "error", exc
        finally:
            leftover = open_figure_numbers() - figures_before
            if leftover:
                close_figures(leftover)
    value = None  # do not keep the result alive
    notes: list[str] = []
    if exit_now is not None and getattr(shell, "exit_now", None) != exit_now:
        shell.exit_now = exit_now  # exit() / quit() in the agent's code must not end the kernel
        notes.append("[the code asked the kernel to exit; that was ignored]")
    pages = _take_new_payloads(shell, payloads_before)
    created, changed, deleted = _changes(before, dict(namespace))
    if scrubber is None:  # secrets the code created, and those it deleted or rebound
        scrubber = Scrubber.for_namespace([*before.items(), *namespace.items()])
    before.clear()
    display_texts, display_image = _reduce_displays(displays)
    display_texts = (*display_texts, *pages, *notes)
    if display_image and not images:
        images.append(display_image)
    traceback_text = error_line = None
    if isinstance(error, SystemExit):
        error_line = (
            f"SystemExit({error.code!r}): the code called sys.exit(); the kernel keeps running"
        )
    elif isinstance(error, BudgetExceeded):
        error_line = f"stopped after {budget:g} s (its time budget); where it was:"
        _drop_budget_frames(error)
        traceback_text = format_exception(error, shell=shell, skip_frames=1)
    elif error is not None:
        error_line = exception_line(error)
        traceback_text = format_exception(error, shell=shell, skip_frames=1)
    return _finish(
        shell, scrubber, status=status, started=started,
        stdout=out.text(), stderr=err.text(), result=result_text, displays=display_texts,
        error=error_line, traceback=traceback_text, created=created, changed=changed,
        deleted=deleted, figures=tuple(figure_notes), images=tuple(images[:1]),
    )  # fmt: skip


def _drop_budget_frames(error: BaseException) -> None:
    """End the traceback at the agent's code, not inside the budget's signal handler."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        if tb.tb_next.tb_frame.f_code.co_filename == _BUDGET_FILE:
            tb.tb_next = None
            return
        tb = tb.tb_next


_BUDGET_FILE: Final = Deadline._on_alarm.__code__.co_filename


def _payloads(shell: Any) -> list[dict[str, Any]] | None:
    manager = getattr(shell, "payload_manager", None)
    if manager is None:
        return None
    return list(manager.read_payload())


def _take_new_payloads(shell: Any, before: list[dict[str, Any]] | None) -> list[str]:
    """Remove payloads the code wrote (they would ride on the user's next cell reply: a pager
    popping up, ``set_next_input`` replacing a cell); pager text becomes output instead."""
    if before is None:
        return []
    manager = shell.payload_manager
    new = list(manager.read_payload())[len(before) :]
    if not new:
        return []
    manager.clear_payload()
    for payload in before:
        manager.write_payload(payload, single=False)
    texts = []
    for payload in new:
        data = payload.get("data") or {}
        text = data.get("text/plain") if isinstance(data, dict) else None
        if payload.get("source") == "page" and isinstance(text, str):
            texts.append(text)
        else:
            texts.append(f"[ignored a {payload.get('source', 'kernel')!s} payload]")
    return texts


def _new_figures(before: set[int]) -> tuple[list[str], list[str]]:
    """Describe (and render, the first one, when cheap) the figures the code opened."""
    notes: list[str] = []
    images: list[str] = []
    for number in sorted(open_figure_numbers() - before):
        fig = pyplot_figure(number)
        if fig is None:
            continue
        lines = figure_lines(fig)
        note = f"figure {number}: " + "; ".join(lines)
        if not images:
            rendered = render_png(fig)
            note += f"; image {rendered.note}"
            if rendered.url:
                images.append(rendered.url)
        notes.append(note)
    return notes, images


def _reduce_displays(outputs: list[dict[str, Any]]) -> tuple[tuple[str, ...], str | None]:
    """``display()`` outputs as text/plain, plus the first small PNG among them."""
    texts: list[str] = []
    image: str | None = None
    for output in outputs:
        data = output.get("data") or {}
        text = data.get("text/plain")
        kinds = sorted(k for k in data if k != "text/plain")
        if isinstance(text, str):
            texts.append(text)
        elif kinds:
            texts.append(f"[a display with {', '.join(kinds)} and no text/plain]")
        png = data.get("image/png")
        if image is None and isinstance(png, str) and len(png) * 3 // 4 <= MAX_PNG_BYTES:
            image = "data:image/png;base64," + png.replace("\n", "")
    return tuple(texts), image


def _syntax_outcome(shell: Any, exc: SyntaxError, scrubber: Scrubber | None) -> RunOutcome:
    line = exception_line(exc)
    text = "".join(traceback.format_exception_only(type(exc), exc)).rstrip()
    if "await" in str(exc.msg):
        hint = (
            "top-level await is not supported by run_python (the kernel's event loop is "
            "running it); use synchronous calls"
        )
        line += f" — {hint}"
        text += f"\n{hint}"
    return _finish(
        shell, scrubber, status="error", started=time.monotonic(), error=line, traceback=text
    )


def _finish(
    shell: Any, scrubber: Scrubber | None, *, status: Status, started: float, **fields: Any
) -> RunOutcome:
    """Cap and scrub every text field; build the outcome."""
    scrub = scrubber or Scrubber.for_namespace(list(shell.user_ns.items()))

    def text(value: str | None, limit: int, keep: Literal["head", "tail", "middle"]) -> str | None:
        return None if value is None else finish(value, limit, scrub=scrub, keep=keep)

    displays = tuple(
        finish(d, MAX_RESULT_CHARS // max(1, len(fields.get("displays", ()))), scrub=scrub)
        for d in fields.pop("displays", ())[:5]
    )
    return RunOutcome(
        status=status,
        stdout=text(fields.pop("stdout", ""), MAX_STREAM_CHARS, "tail") or "",
        stderr=text(fields.pop("stderr", ""), MAX_STREAM_CHARS, "tail") or "",
        result=text(fields.pop("result", None), MAX_RESULT_CHARS, "middle"),
        displays=displays,
        error=text(fields.pop("error", None), 600, "head"),
        traceback=text(fields.pop("traceback", None), MAX_TRACEBACK_CHARS, "middle"),
        figures=tuple(scrub(f) for f in fields.pop("figures", ())),
        duration_s=time.monotonic() - started,
        **fields,
    )
