"""``%%codex`` and ``%codex``: parsing and presentation only; the work is in session.py."""

from __future__ import annotations

import builtins
import html
import re
import shlex
import string
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display
from IPython.utils.text import DollarFormatter
from pydantic import BaseModel

from ..errors import CodexError, InvalidArgumentError
from ..policies import check_approval, check_sandbox
from .backends import BACKENDS, RemoteTarget
from .session import NotebookSession, NotebookTurn, TurnOptions
from .text import format_tokens
from .tools import calls
from .tools.kernel_state import CellWatcher, find_last_error

__all__ = ["CodexMagics"]

SUBCOMMANDS = (
    "status",
    "wait",
    "interrupt",
    "threads",
    "new",
    "config",
    "restart",
    "backend",
    "connect",
    "insert",
    "fix",
    "log",
)
TOOL_LEVELS = ("all", "read", "none")
#: How long ``%codex interrupt`` waits for the stopped turns to finish.
INTERRUPT_GRACE_S = 5.0
#: How long a ``--wait`` cell interrupted by the kernel waits for its turn to stop.
STOP_WAIT_S = 10.0
CONFIG_KEYS = ("model", "cwd", "sandbox", "approval", "tools", "timeout", "thread")


@magics_class
class CodexMagics(Magics):
    """Run Codex turns from cells; each streams into its own widget."""

    def __init__(self, shell: Any, session: NotebookSession, cells: CellWatcher) -> None:
        super().__init__(shell)
        self.session = session
        self.cells = cells
        self.ip: Any = shell  # IPython types ``shell`` as optional; ours always has one

    @magic_arguments()
    @argument("-t", "--thread", metavar="NAME", help="conversation thread name (default: main)")
    @argument("--new", action="store_true", help="start a fresh conversation on that name")
    @argument("--model", metavar="M", help="model for this turn")
    @argument("--cwd", metavar="DIR", help="working directory for the agent")
    @argument("--sandbox", metavar="MODE", help="read-only | workspace-write | full-access")
    @argument("--approval", metavar="MODE", help="ask (default) | review | deny")
    @argument("--tools", metavar="LEVEL", help="all (default) | read | none: the notebook tools")
    @argument("--fix", action="store_true", help="ask about the last error (and propose a fix)")
    @argument("--wait", action="store_true", help="block until the turn ends (Ctrl-C stops it)")
    @argument("-o", "--output", metavar="VAR", help="bind the NotebookTurn to VAR at once")
    @argument("--schema", metavar="MODEL", help="pydantic model for a structured result")
    @argument("--timeout", metavar="S", type=float, help="stop the turn after S seconds")
    @line_cell_magic
    def codex(self, line: str, cell: str | None = None) -> Any:
        """%%codex [options] + prompt: run a Codex turn.  %codex SUBCOMMAND: manage turns.

        Subcommands: status | wait [NAME|all] [--timeout S] | interrupt [NAME|all] |
        threads | new [NAME] | config [key=value ...] | restart | backend [demo|codex|remote] |
        connect URL [--token-file F] | insert [N] | fix [instructions] | log
        """
        if cell is None:
            return self._line(line)
        options, fix = self._parse_cell_options(line)
        prompt = self._interpolate(cell).strip()
        if fix:
            prompt = self._fix_prompt(prompt)
        if not prompt:
            raise UsageError("The %%codex cell is empty: write the prompt below the %%codex line.")
        return self._run(prompt, options)

    def _run(self, prompt: str, options: TurnOptions) -> None:
        """Start a turn shown in this cell (and wait for it with ``--wait``)."""

        def show(turn: NotebookTurn) -> Any:
            if options.output:
                self.ip.user_ns[options.output] = turn
            return display(turn.widget, display_id=True)

        turn = self.session.submit(prompt, options, cell=self.cells.running_count(), show=show)
        if options.wait:
            try:
                turn.wait()
            except KeyboardInterrupt:  # a kernel interrupt stops this turn
                turn.interrupt()
                if turn.wait(STOP_WAIT_S):
                    print("Interrupted: the turn was stopped.")
                else:  # e.g. its server is still starting: it stops as soon as it can
                    print(
                        f"Interrupted: the turn is still stopping after {STOP_WAIT_S:g} s; "
                        "its widget shows when it has."
                    )
        return None

    # -- the cell magic ---------------------------------------------------------------
    def _parse_cell_options(self, line: str) -> tuple[TurnOptions, bool]:
        try:
            args = parse_argstring(self.codex, line)
        except UsageError as exc:
            raise UsageError(f"{exc}\n\n{_usage()}") from None
        try:
            if args.sandbox is not None:
                check_sandbox(args.sandbox, name="--sandbox")
            if args.approval is not None:
                check_approval(args.approval, name="--approval")
        except InvalidArgumentError as exc:
            raise UsageError(str(exc)) from None
        if args.tools is not None and args.tools not in TOOL_LEVELS:
            raise UsageError(f"--tools {args.tools!r}: use all, read (no code runs) or none")
        if args.timeout is not None and not args.timeout > 0:  # nan too
            raise UsageError(f"--timeout must be a positive number of seconds, not {args.timeout}")
        if args.output is not None and not args.output.isidentifier():
            raise UsageError(f"-o needs a Python variable name, not {args.output!r}")
        if args.thread is not None and not args.thread.strip():
            raise UsageError("-t needs a thread name")
        cwd = None
        if args.cwd is not None:
            path = Path(args.cwd).expanduser().resolve()
            if not path.is_dir():
                raise UsageError(f"--cwd {args.cwd!r} is not an existing directory")
            cwd = str(path)
        schema = self._resolve_schema(args.schema) if args.schema else None
        options = self.session.with_defaults(
            thread=args.thread,
            new=args.new or None,
            model=args.model,
            cwd=cwd,
            sandbox=args.sandbox,
            approval=args.approval,
            tools=args.tools,
            wait=args.wait or None,
            output=args.output,
            schema=schema,
            timeout=args.timeout,
        )
        return options, bool(args.fix)

    def _fix_prompt(self, instructions: str) -> str:
        """The last error (its cell, its traceback; secrets scrubbed) as a question."""
        watcher = self.cells
        if find_last_error(self.ip, watcher) is None:
            raise UsageError("No cell has raised an exception in this kernel: nothing to fix.")
        error = calls.last_error(self.ip, watcher=watcher).text
        ask = instructions or "Why did it fail?"
        return (
            f"A cell in my notebook failed. {ask}\n"
            "Find the cause (look at my variables if it helps) and propose the fixed cell with "
            "the notebook's propose_cell tool; explain the fix in a sentence or two.\n\n"
            f"{error}"
        )

    def _resolve_schema(self, name: str) -> type[BaseModel]:
        obj: Any = self.ip.user_ns
        for i, part in enumerate(name.split(".")):
            try:
                obj = obj[part] if i == 0 else getattr(obj, part)
            except (KeyError, AttributeError):
                raise UsageError(
                    f"--schema {name!r}: no such name in the notebook; define a pydantic model "
                    "class first (class Answer(BaseModel): ...)"
                ) from None
        if not (isinstance(obj, type) and issubclass(obj, BaseModel)):
            raise UsageError(
                f"--schema {name!r} is not a pydantic model class (BaseModel subclass)"
            )
        return obj

    def _interpolate(self, cell: str) -> str:
        """``{expr}`` and ``$var`` from the user namespace, like IPython's line magics.

        As in IPython, if any expression fails nothing is substituted (code in
        prompts often contains braces) — but the cell says which one and why.
        """
        formatted, failed = _expand(cell, self.ip.user_ns)
        if failed is not None:
            expr, why = failed
            field, escape = f"{{{expr}}}", "{{ and }} for literal braces"
            if f"${expr}" in cell and field not in cell:  # it was written $name
                field, escape = f"${expr}", "$$ for a literal $"
            print(
                f"codex: {field} was not filled in ({why}), so the prompt was sent as "
                f"written. Write {escape}.",
                file=sys.stderr,
            )
            return cell
        return formatted

    # -- the line magic ---------------------------------------------------------------
    def _line(self, line: str) -> Any:
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"%codex: {exc}") from None
        if not words:
            words = ["status"]
        command, rest = words[0], words[1:]
        if command not in SUBCOMMANDS:
            raise UsageError(
                f"%codex: unknown subcommand {command!r}. Use one of: {', '.join(SUBCOMMANDS)}; "
                "or %%codex as a cell magic with a prompt."
            )
        handler = getattr(self, f"_cmd_{command}")
        return handler(rest)

    def _cmd_status(self, rest: Sequence[str]) -> None:
        session = self.session
        rows = [
            (
                f"[{t.cell}]" if t.cell is not None else "",
                t.thread_name,
                t.state,
                t.elapsed_text,
                _tokens(t),
                (t.turn_id or "")[:13],
            )
            for t in session.select(None)
        ]
        version = session.server_version
        caption = (
            f"backend: {session.backend_name} · {session.server.where}"
            + (f" · codex {version}" if version else "")
            + f" · {len(session.running())} running"
        )
        _show_table(("cell", "thread", "state", "elapsed", "tokens", "turn"), rows, caption)

    def _cmd_wait(self, rest: Sequence[str]) -> None:
        words = list(rest)
        timeout = None
        if "--timeout" in words:
            i = words.index("--timeout")
            try:
                timeout = float(words[i + 1])
                del words[i : i + 2]
            except (IndexError, ValueError):
                raise UsageError("%codex wait --timeout needs a number of seconds") from None
        which = words[0] if words else "all"
        turns = self.session.select(which)
        if not turns and which != "all":
            raise UsageError(f"%codex wait: no turns on thread {which!r}")
        try:
            finished = self.session.wait(turns, timeout)
        except KeyboardInterrupt:
            print("Stopped waiting; the turns keep running (%codex interrupt stops them).")
            return
        for turn in turns:
            turn.republish(self.cells.running_count())
        if not finished:
            pending = [t for t in turns if not t.done()]
            print(f"%codex wait: {len(pending)} turn(s) still running after {timeout} s")

    def _cmd_interrupt(self, rest: Sequence[str]) -> None:
        which = rest[0] if rest else "all"
        turns = [t for t in self.session.select(which) if not t.done()]
        for turn in turns:
            turn.interrupt()
        if self.session.wait(turns, INTERRUPT_GRACE_S):  # they end within ~10 ms normally
            for turn in turns:
                turn.republish(self.cells.running_count())
        print(f"interrupted {len(turns)} turn(s)")

    def _cmd_threads(self, rest: Sequence[str]) -> None:
        names = self.session.threads()
        turns = self.session.select(None)
        for turn in turns:  # names whose first turn is still starting
            names.setdefault(turn.thread_name, turn.thread_id or "(starting)")
        rows = [
            (name, thread_id, str(sum(1 for t in turns if t.thread_name == name)))
            for name, thread_id in sorted(names.items())
        ]
        _show_table(
            ("name", "codex thread id", "turns this session"),
            rows,
            f"backend: {self.session.backend_name}",
        )

    def _cmd_insert(self, rest: Sequence[str]) -> None:
        """``%codex insert [N]``: proposal N (default: the latest) of the latest turn that
        proposed cells, as a new cell below this one."""
        turn = next((t for t in reversed(self.session.select(None)) if t.proposals), None)
        if turn is None:
            raise UsageError("%codex insert: no turn has proposed a cell yet")
        proposals = turn.proposals
        try:
            number = int(rest[0]) if rest else len(proposals)
        except ValueError:
            raise UsageError(f"%codex insert: N is a number, not {rest[0]!r}") from None
        if not 1 <= number <= len(proposals):
            raise UsageError(
                f"%codex insert: the latest turn with proposals ({turn!r}) has proposals 1 to "
                f"{len(proposals)}"
            )
        self.ip.set_next_input(proposals[number - 1], replace=False)
        print(f"proposed cell {number} of turn [{turn.number}] is in a new cell below")

    def _cmd_fix(self, rest: Sequence[str]) -> None:
        """``%codex fix [instructions]``: ask about the last error, in this cell."""
        options = self.session.with_defaults()
        self._run(self._fix_prompt(" ".join(rest)), options)

    def _cmd_new(self, rest: Sequence[str]) -> None:
        name = rest[0] if rest else self.session.defaults.thread
        self.session.forget_thread(name)
        print(f"thread '{name}': the next cell starts a new conversation")

    def _cmd_config(self, rest: Sequence[str]) -> None:
        if not rest:
            d = self.session.defaults
            for key in CONFIG_KEYS:
                print(f"{key} = {getattr(d, key)!r}")
            return
        updates: dict[str, Any] = {}
        for word in rest:
            key, sep, value = word.partition("=")
            if not sep or key not in CONFIG_KEYS:
                raise UsageError(
                    f"%codex config: expected key=value with key in {', '.join(CONFIG_KEYS)}; "
                    f"got {word!r}"
                )
            updates[key] = self._config_value(key, value)
        self.session.defaults = self.session.with_defaults(**updates)
        print("; ".join(f"{k} = {v!r}" for k, v in updates.items()))

    def _config_value(self, key: str, value: str) -> Any:
        if key == "tools" and value not in TOOL_LEVELS:
            raise UsageError("%codex config: tools must be all, read or none")
        try:
            if key == "sandbox":
                return check_sandbox(value)
            if key == "approval":
                return check_approval(value, name="approval")
        except InvalidArgumentError as exc:
            raise UsageError(f"%codex config: {exc}") from None
        if key == "timeout":
            try:
                seconds = float(value)
            except ValueError:
                seconds = float("nan")
            if not seconds > 0:  # what --timeout refuses, refused here too
                raise UsageError(f"timeout must be a positive number of seconds, not {value!r}")
            return seconds
        if key == "thread" and not value.strip():
            raise UsageError("%codex config: thread needs a thread name")
        if key == "cwd":
            path = Path(value).expanduser().resolve()
            if not path.is_dir():
                raise UsageError(f"cwd {value!r} is not an existing directory")
            return str(path)
        return value

    def _cmd_restart(self, rest: Sequence[str]) -> None:
        self.session.restart()
        print("codex app-server stopped; the next %%codex cell starts a fresh one")

    def _cmd_backend(self, rest: Sequence[str]) -> None:
        if not rest:
            print(f"backend: {self.session.backend_name} · {self.session.server.where}")
            notice = self.session.server.notice
            if notice:
                print(notice)
            return
        if rest[0] not in BACKENDS:
            raise UsageError(f"%codex backend: use one of {', '.join(BACKENDS)}, not {rest[0]!r}")
        try:
            self.session.restart(backend=rest[0])
        except ValueError as exc:
            raise UsageError(f"%codex backend: {exc}") from None
        print(f"backend: {self.session.backend_name} (the next %%codex cell uses it)")

    def _cmd_connect(self, rest: Sequence[str]) -> None:
        """``%codex connect URL [--token-file F]``: run turns on a running app-server."""
        words = list(rest)
        token_file = None
        if "--token-file" in words:
            i = words.index("--token-file")
            if i + 1 >= len(words):
                raise UsageError("%codex connect: --token-file needs a file name")
            token_file = str(Path(words[i + 1]).expanduser().resolve())
            del words[i : i + 2]
        if len(words) != 1:
            raise UsageError(
                "usage: %codex connect ws://HOST:PORT [--token-file FILE] (the token can also "
                "come from $CODEX_APP_SERVER_TOKEN or $CODEX_APP_SERVER_TOKEN_FILE; never put it "
                "in the notebook)"
            )
        if token_file is not None and not Path(token_file).is_file():
            raise UsageError(f"%codex connect: no token file at {token_file}")
        try:
            target = RemoteTarget.parse(words[0], token_file)
        except InvalidArgumentError as exc:
            raise UsageError(f"%codex connect: {exc}") from None
        self.session.restart(backend="remote", remote=target)
        try:
            client = self.session.server.client()
        except CodexError as exc:  # a refused token, no server there: say it now
            print(f"Could not connect to {target.url}: {exc}", file=sys.stderr)
            print("Fix it and run %codex connect again (or %codex backend demo).", file=sys.stderr)
            return
        print(f"connected: turns now run on {target.url} (codex {client.server_version})")

    def _cmd_log(self, rest: Sequence[str]) -> None:
        print(self.session.log_text())


#: ``$name`` or ``$a.b`` (``$$name`` is a literal ``$name``).
_DOLLAR = re.compile(r"\$(\$?)([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)")


class _PromptFormatter(DollarFormatter):
    """``{expr}`` and ``$name`` fields, as IPython's ``DollarFormatter`` finds them, except:

    - its ``$`` pattern drops the text before a ``$name`` on an earlier line (IPython 9.18:
      ``"a\nb $x"`` becomes ``"b 1"``) and is quadratic on a long line (a 40 KB line without
      ``$`` took 7 s): ours is one linear scan that keeps every character;
    - ``$`` takes only a name (``$5.99`` stays a price) that ends where the name ends
      (``$name.`` at the end of a sentence, ``$name's``);
    - no shell quoting rule (IPython skips a ``$name`` followed by an odd number of ``'``:
      any apostrophe in a prompt).
    """

    def parse(self, format_string: str) -> Iterator[tuple[str, str | None, str | None, str | None]]:
        for literal, field, spec, conversion in string.Formatter.parse(self, format_string):
            text, start = "", 0
            for match in _DOLLAR.finditer(literal):
                text += literal[start : match.start()]
                start = match.end()
                if match.group(1):  # $$name
                    text += "$" + match.group(2)
                else:
                    yield text, match.group(2), "", None
                    text = ""
            yield text + literal[start:], field, spec, conversion


def _expand(cell: str, namespace: dict[str, Any]) -> tuple[str, tuple[str, str] | None]:
    """``cell`` with its ``$name`` and ``{expr}`` fields filled in, as IPython's
    ``DollarFormatter`` does; or, at the first field that fails, ``(field, why)``.

    Field by field, so the field named is the one that failed, and each ``{expr}``
    is evaluated at most once (a failure leaves the later ones alone).
    """
    formatter = _PromptFormatter()
    parts: list[str] = []
    try:
        fields = list(formatter.parse(cell))
    except ValueError as exc:  # unbalanced braces
        return cell, (cell.strip().splitlines()[0][:60], str(exc))
    scope = dict(namespace)  # a copy: what an expression assigns stays out of the notebook
    for literal, name, spec, conversion in fields:
        parts.append(literal)
        if name is None:
            continue
        expr = f"{name}:{spec}" if spec else name  # IPython's rule: a spec is a slice
        try:
            value = eval(expr, scope)
            parts.append(formatter.format_field(formatter.convert_field(value, conversion), ""))
        except Exception as exc:
            if isinstance(exc, SyntaxError) and spec:  # {d: 1}: code, its name says more
                return cell, (name, _why_not(name, namespace) or _why(exc))
            return cell, (expr, _why(exc))
    return "".join(parts), None


def _why_not(name: str, namespace: dict[str, Any]) -> str | None:
    """Why a bare name (no call: nothing runs) does not resolve; None if it does."""
    if not name.isidentifier():
        return None
    return None if name in namespace or hasattr(builtins, name) else _why(NameError(name))


def _why(exc: BaseException) -> str:
    if isinstance(exc, NameError):
        return f"name {exc.name or exc.args[0]!r} is not defined"
    return f"{type(exc).__name__}: {exc}"


def _usage() -> str:
    return (
        "Usage: %%codex [-t NAME | --new] [--model M] [--cwd DIR] "
        "[--sandbox read-only|workspace-write|full-access] [--approval ask|review|deny] "
        "[--wait] [-o VAR] [--schema MODEL] [--timeout S]\n<prompt>"
    )


def _tokens(turn: NotebookTurn) -> str:
    usage = turn.header().usage
    return format_tokens(usage.total_tokens) if usage is not None else ""


def _show_table(headers: Sequence[str], rows: Sequence[Sequence[str]], caption: str) -> None:
    head = "".join(f"<th style='text-align:left'>{html.escape(h)}</th>" for h in headers)
    body = (
        "".join(
            "<tr>"
            + "".join(f"<td style='text-align:left'>{html.escape(c)}</td>" for c in row)
            + "</tr>"
            for row in rows
        )
        or f"<tr><td colspan={len(headers)}><em>none yet</em></td></tr>"
    )
    table = f"<table><caption style='text-align:left'>{html.escape(caption)}</caption>"
    table += f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    lines = [caption, "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    display({"text/html": table, "text/plain": "\n".join(lines)}, raw=True)
