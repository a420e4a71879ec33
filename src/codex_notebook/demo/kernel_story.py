"""The demo model's use of the notebook's kernel tools (client-defined tools in ``notebook``).

The notebook layer declares, on every thread it starts, the namespace ``notebook`` with the
tools ``variables {pattern?, limit?}``, ``inspect {name}``, ``cells {last?}``, ``last_error {}``,
``run_python {code}`` and ``propose_cell {code, explanation?}``. This module decides, from one
Responses API request body alone, which of them the demo model calls next and what it answers
once it has what it needs. Like the rest of the demo model it is a pure function of the body
(codex resends the whole conversation on every request), so concurrent turns never mix.

How codex presents and routes namespaced tools (measured with a raw JSON-RPC client against the
demo server on codex 0.163.0 and 0.171.0; both behave the same):

* Declaring: ``initialize`` with ``capabilities.experimentalApi: true``, then ``thread/start``
  with ``dynamicTools: [{"type": "namespace", "name": "notebook", "description": ...,
  "tools": [{"type": "function", "name": ..., "description": ..., "inputSchema": {...}}]}]``.
* What the model sees: the request's ``tools`` list holds one entry
  ``{"type": "namespace", "name": "notebook", "description": ..., "tools": [{"type":
  "function", "name": "last_error", "description": ..., "strict": false, "parameters":
  <inputSchema>}, ...]}`` (tools sorted by name, ``inputSchema`` renamed ``parameters``), next
  to codex's own tools (``exec_command``, ``write_stdin``, ..., namespace ``multi_agent_v1``).
* Calling: the model must emit ``{"type": "function_call", "name": "variables", "namespace":
  "notebook", "arguments": "<JSON text>", "call_id": ...}``. codex then sends the client
  ``item/tool/call`` with ``namespace: "notebook"``, ``tool: "variables"`` and the arguments
  parsed. Any other spelling is not routed: ``"notebook.variables"``, ``"notebook__variables"``,
  ``"notebookvariables"`` or a bare ``"variables"`` without ``namespace`` come back to the model
  as ``function_call_output`` ``"unsupported call: <namespace><name>"`` (and an ERROR line from
  ``codex_core::tools::router`` on stderr); the turn goes on.
* The follow-up request: ``input`` ends with the model's ``function_call`` (``namespace``
  kept) and ``{"type": "function_call_output", "call_id": ..., "output": ...}`` where
  ``output`` is the text when the client answered one ``inputText`` item, else a list of
  ``{"type": "input_text", "text": ...}`` parts. The client's ``success`` flag is not shown to
  the model.

The stories (chosen by :func:`story_for` from the prompt, only when the request offers the
``notebook`` tools; every step is derived from the calls already in the body):

``fix``  ("fix", "why did ... fail", "error", "traceback", "what went wrong")
    ``last_error``; ``cells`` when the error answer carries no source; for ``KeyError: 'col'``
    on ``frame['col']`` the frame's columns (from an earlier ``inspect`` in the conversation, else
    ``inspect {name: frame}``) and for ``NameError`` the variable names (earlier ``variables``,
    else ``variables``); then ``propose_cell`` with the fixed cell (closest column / variable
    name, via difflib) or, for any other error, a cell that prints diagnostics; then the answer.
``run``  ("run", "compute", "calculate", "evaluate", "execute"; not "command"/"shell")
    ``run_python`` with the prompt's inline code if it has some, else ``<frame>.describe()`` for
    the most DataFrame-like variable (``variables`` first when none is known), then an answer
    that quotes the output, the exception, or that the user declined.
``data`` ("what data", "my data", "variables", "data frame", "inspect")
    ``variables``, ``inspect`` of the most DataFrame-like variable, then an answer with its
    shape, columns and head as the tool reported them.

The tool answers are read by :mod:`codex_notebook.demo.tool_answers`, tolerantly.
"""

from __future__ import annotations

import builtins
import difflib
import io
import json
import keyword
import re
import tokenize
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from codex_notebook.demo.replies import (
    Reply,
    TextAnswer,
    ToolCall,
    chunk_words,
    fence,
    quoted_prompt,
)
from codex_notebook.demo.tool_answers import (
    ErrorFacts,
    Variable,
    code_blocks,
    error_facts,
    frame_facts,
    inline_code,
    is_refusal,
    pick_frame,
    variables,
)

__all__ = [
    "MAX_CALLS_PER_TURN",
    "NAMESPACE",
    "TOOLS",
    "Conversation",
    "Fix",
    "NotebookCall",
    "conversation",
    "offered_tools",
    "output_text",
    "proposed_fix",
    "rename_variable",
    "replace_string",
    "story_for",
    "story_step",
]

NAMESPACE = "notebook"
TOOLS = ("variables", "inspect", "cells", "last_error", "run_python", "propose_cell")
MAX_CALLS_PER_TURN = 8  # a runaway story ends with an answer instead of looping
_QUOTE_LINES = 40
_QUOTE_CHARS = 4000

_STORY_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "fix",
        re.compile(
            r"\bfix\w*|\bwhy\s+(?:did|does|is)\b.*?\b(?:fail|break|broke|crash|error|wrong)\w*"
            r"|\bwhat\s+went\s+wrong\b|\b(?:error|exception|traceback|debug)\w*",
            re.I | re.S,
        ),
    ),
    (
        "run-code",
        re.compile(r"\b(?:run|compute|calculate|evaluate|execute)\w*.*`[^`]+`", re.I | re.S),
    ),
    (
        "data",
        re.compile(
            r"\bwhat\s+data\b|\bwhich\s+data\b|\bmy\s+data\b|\bdata\s?frames?\b|\bvariables?\b"
            r"|\binspect\w*|\bwhat\s+do\s+i\s+have\b",
            re.I,
        ),
    ),
    ("run", re.compile(r"\b(?:run|compute|calculat|evaluat|execut)\w*", re.I)),
)
# "run a command" / "in the shell" stays the shell demo (exec_command), tools or not.
_SHELL_RE = re.compile(r"\b(?:command|shell|terminal)\w*", re.I)
_REDUCTIONS = {
    "mean": "mean",
    "average": "mean",
    "avg": "mean",
    "sum": "sum",
    "total": "sum",
    "max": "max",
    "maximum": "max",
    "min": "min",
    "minimum": "min",
    "median": "median",
    "count": "count",
}


@dataclass(frozen=True)
class NotebookCall:
    """One ``notebook.*`` call found in the conversation, with its output (None if none yet)."""

    tool: str
    arguments: Mapping[str, Any]
    output: str | None


@dataclass(frozen=True)
class Conversation:
    """What one request body says about the notebook tools.

    ``turn_calls`` are the calls since the last user prompt (this turn's progress);
    ``earlier_calls`` the ones before it (facts learnt in earlier turns of the thread).
    """

    prompt: str
    offered: frozenset[str]
    turn_calls: tuple[NotebookCall, ...] = ()
    earlier_calls: tuple[NotebookCall, ...] = ()

    def last(self, tool: str, **match: Any) -> NotebookCall | None:
        """This turn's latest call of *tool* (with these argument values), if any."""
        for call in reversed(self.turn_calls):
            if call.tool == tool and all(call.arguments.get(k) == v for k, v in match.items()):
                return call
        return None

    def outputs(self, tool: str, **match: Any) -> list[str]:
        """Every output of *tool* in the whole conversation, newest first."""
        calls = (*self.earlier_calls, *self.turn_calls)
        return [
            call.output
            for call in reversed(calls)
            if call.tool == tool
            and call.output is not None
            and all(call.arguments.get(k) == v for k, v in match.items())
        ]


# --- reading the body ---------------------------------------------------------------------------


def offered_tools(body: Mapping[str, Any]) -> frozenset[str]:
    """The tool names of the ``notebook`` namespace in the request's ``tools`` list."""
    tools = body.get("tools")
    if not isinstance(tools, list):
        return frozenset()
    for entry in tools:
        if (
            isinstance(entry, Mapping)
            and entry.get("type") == "namespace"
            and entry.get("name") == NAMESPACE
            and isinstance(entry.get("tools"), list)
        ):
            return frozenset(
                str(tool["name"])
                for tool in entry["tools"]
                if isinstance(tool, Mapping) and isinstance(tool.get("name"), str)
            )
    return frozenset()


def output_text(output: Any) -> str:
    """A ``function_call_output``'s ``output`` as text (a string, or a list of input_text parts)."""
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return "\n".join(
            str(part.get("text", ""))
            for part in output
            if isinstance(part, Mapping) and part.get("type") in ("input_text", "text")
        )
    if isinstance(output, Mapping):
        return str(output.get("content", ""))
    return ""


def _arguments(raw: Any) -> Mapping[str, Any]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return {}
    return raw if isinstance(raw, Mapping) else {}


def conversation(body: Mapping[str, Any], prompt: str, prompt_index: int | None) -> Conversation:
    """The notebook calls of *body*, split at ``prompt_index`` (the last user prompt's item).

    Each call is paired with the first ``function_call_output`` after it that has its
    ``call_id`` (so a reused id cannot hand one call another call's output).
    """
    items = body.get("input")
    items = items if isinstance(items, list) else []
    found: list[tuple[int, str, Mapping[str, Any], str | None]] = []
    waiting: dict[Any, int] = {}  # call_id -> index into found, for calls without output yet
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            continue
        kind = item.get("type")
        if kind == "function_call" and item.get("namespace") == NAMESPACE:
            waiting[item.get("call_id")] = len(found)
            found.append(
                (index, str(item.get("name", "")), _arguments(item.get("arguments")), None)
            )
        elif kind == "function_call_output" and item.get("call_id") in waiting:
            slot = waiting.pop(item.get("call_id"))
            at, tool, args, _none = found[slot]
            found[slot] = (at, tool, args, output_text(item.get("output")))
    earlier = tuple(
        NotebookCall(tool, args, out)
        for at, tool, args, out in found
        if prompt_index is None or at < prompt_index
    )
    current = tuple(
        NotebookCall(tool, args, out)
        for at, tool, args, out in found
        if prompt_index is not None and at > prompt_index
    )
    return Conversation(prompt, offered_tools(body), current, earlier)


def story_for(prompt: str) -> str | None:
    """Which story a prompt asks for (``fix``, ``run``, ``data``), or None."""
    for name, rule in _STORY_RULES:
        if rule.search(prompt):
            if name.startswith("run") and _SHELL_RE.search(prompt):
                continue
            return "run" if name == "run-code" else name
    return None


# --- replies --------------------------------------------------------------------------------


def _call(tool: str, arguments: Mapping[str, Any], story: str) -> ToolCall:
    return ToolCall(tool, json.dumps(dict(arguments)), reason=f"story:{story}", namespace=NAMESPACE)


def _answer(text: str, story: str, delay_ms: int) -> TextAnswer:
    return TextAnswer(chunk_words(text), delay_ms, reason=f"story:{story}")


def _quote(text: str, info: str = "text") -> str:
    """*text* in a fenced block, capped (the cut is said)."""
    lines = text.strip("\n").splitlines()
    cut = ""
    if len(lines) > _QUOTE_LINES:
        cut = f"\n... ({len(lines) - _QUOTE_LINES} more lines)"
        lines = lines[:_QUOTE_LINES]
    body = "\n".join(lines)
    if len(body) > _QUOTE_CHARS:
        body, cut = body[:_QUOTE_CHARS], f"\n... ({len(body) - _QUOTE_CHARS} more characters)"
    return fence(body + cut, info)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "(empty answer)")


def _names(items: Iterable[str]) -> str:
    return ", ".join(f"`{item}`" for item in items)


def story_step(conv: Conversation, story: str, *, delay_ms: int = 0) -> Reply:
    """The next reply of *story* given the calls made so far (see the module docstring)."""
    if len(conv.turn_calls) >= MAX_CALLS_PER_TURN:
        text = (
            f"## Stopping here\n\n{quoted_prompt(conv.prompt)}"
            f"I called {len(conv.turn_calls)} notebook tools in this turn without finishing; "
            "the demo model stops rather than loop. Ask again in a new cell."
        )
        return _answer(text, story, delay_ms)
    if story == "fix":
        return _fix_step(conv, delay_ms)
    if story == "run":
        return _run_step(conv, delay_ms)
    return _data_step(conv, delay_ms)


# --- data -----------------------------------------------------------------------------------


def _known_variables(conv: Conversation) -> list[Variable]:
    for output in conv.outputs("variables"):
        found = variables(output)
        if found:
            return found
    return []


def _data_step(conv: Conversation, delay_ms: int) -> Reply:
    listed = conv.last("variables")
    if listed is None:
        return _call("variables", {}, "data")
    heading = f"## What data you have\n\n{quoted_prompt(conv.prompt)}"
    out = listed.output or ""
    if is_refusal(out) or out.lstrip().upper().startswith("ERROR"):
        text = f"{heading}I asked the notebook for your variables; it answered:\n\n{_quote(out)}"
        return _answer(text, "data", delay_ms)
    found = variables(out)
    frame = pick_frame(found)
    if frame is None:
        names = _names(v.name for v in found[:12]) or "none"
        text = (
            f"{heading}`notebook.variables` lists {len(found)} variable(s) ({names}), and none "
            "of them looks like a table. Build a DataFrame in a cell (for example with "
            "`pandas.read_csv`) and ask again.\n\nWhat the tool answered:\n\n" + _quote(out)
        )
        return _answer(text, "data", delay_ms)
    inspected = conv.last("inspect", name=frame.name)
    if inspected is None and "inspect" in conv.offered:
        return _call("inspect", {"name": frame.name}, "data")
    return _answer(_data_answer(heading, found, frame, inspected), "data", delay_ms)


def _data_answer(
    heading: str, found: Sequence[Variable], frame: Variable, inspected: NotebookCall | None
) -> str:
    others = [v for v in found if v.name != frame.name][:8]
    parts = [
        heading,
        f"`notebook.variables` lists {len(found)} variable(s). The most table-like is "
        f"**`{frame.name}`** ({frame.description.strip() or 'no description'}).",
    ]
    if inspected is None or inspected.output is None:
        parts.append("\n\nI could not inspect it: this thread has no `notebook.inspect` tool.")
    else:
        facts = frame_facts(inspected.output)
        parts.append(f" `notebook.inspect` says about `{frame.name}`:\n\n")
        if facts.shape is not None:
            rows, cols = facts.shape
            parts.append(f"- **shape:** {rows:,} rows × {cols:,} columns\n")
        if facts.columns:
            shown = facts.columns[:20]
            more = f" and {len(facts.columns) - 20} more" if len(facts.columns) > 20 else ""
            parts.append(f"- **columns:** {_names(shown)}{more}\n")
        if facts.head:
            parts.append(f"\nIts first rows:\n\n{_quote(facts.head)}")
        if not facts.known:
            parts.append(
                "I found no shape or column list in that answer; here it is as the tool gave "
                f"it:\n\n{_quote(inspected.output)}"
            )
    if others:
        described = ", ".join(f"`{v.name}` ({_short(v.description)})" for v in others)
        parts.append(f"\nYour other variables: {described}.")
    parts.append(
        '\n\nNext, try "why did my cell fail?" after a failing cell, or '
        f'"run `{frame.name}.describe()`".'
    )
    return "".join(parts)


def _short(description: str) -> str:
    words = description.strip().split()
    text = " ".join(words[:4])
    return text if len(words) <= 4 else text + " ..."


# --- fix ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fix:
    """The cell the fix story proposes, why, and whether it is a real fix or diagnostics."""

    code: str
    explanation: str
    fixed: bool  # True: a real fix; False: a diagnostics cell


def _error_source(conv: Conversation, error_answer: str, line: str | None) -> str | None:
    """The failing cell's source: from last_error, the prompt, or a ``cells`` answer."""
    for text in (error_answer, conv.prompt):
        source = _python_block(text, line)
        if source is not None:
            return source
    cells = conv.last("cells")
    if cells is not None and cells.output:
        return _python_block(cells.output, line, prefer_last=True) or _in_sections(
            cells.output, line
        )
    return None


def _python_block(text: str, line: str | None, *, prefer_last: bool = False) -> str | None:
    blocks = [
        body
        for info, body in code_blocks(text)
        if info in ("", "python", "py", "ipython", "python3") and not _is_traceback(body)
    ]
    if line:
        holding = [body for body in blocks if line.strip() in body]
        if holding:
            return holding[-1]
    if not blocks:
        return None
    return blocks[-1] if prefer_last else blocks[0]


def _is_traceback(body: str) -> bool:
    return "Traceback" in body or bool(re.search(r"^\s*-+>\s*\d+", body, re.M))


_IN_HEADER_RE = re.compile(r"^\s*(?:In\s*)?\[\s*\d+\s*\]\s*:?\s*(.*)$")


def _in_sections(text: str, line: str | None) -> str | None:
    """Cells printed as ``In [3]: source`` sections: the one holding *line*, else the last."""
    sections: list[list[str]] = []
    for raw in text.splitlines():
        header = _IN_HEADER_RE.match(raw)
        if header is not None:
            sections.append([header.group(1)] if header.group(1).strip() else [])
        elif sections and not re.match(r"^\s*(?:Out\s*)?\[\s*\d+\s*\]|^\s*(?:->|=>)", raw):
            sections[-1].append(raw)
    sources = ["\n".join(s).strip("\n") + "\n" for s in sections if "".join(s).strip()]
    if line:
        holding = [s for s in sources if line.strip() in s]
        if holding:
            return holding[-1]
    return sources[-1] if sources else None


def _tokens(source: str) -> list[tokenize.TokenInfo] | None:
    try:
        return list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None


def _splice(source: str, edits: Sequence[tuple[tuple[int, int], tuple[int, int], str]]) -> str:
    lines = source.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def at(pos: tuple[int, int]) -> int:
        return offsets[pos[0] - 1] + pos[1]

    out = source
    for start, end, text in sorted(edits, key=lambda e: at(e[0]), reverse=True):
        out = out[: at(start)] + text + out[at(end) :]
    return out


def rename_variable(source: str, old: str, new: str) -> str:
    """*source* with the name *old* replaced by *new* (not attributes, strings or comments)."""
    tokens = _tokens(source)
    if tokens is None:
        return re.sub(rf"(?<![\w.]){re.escape(old)}\b", new, source)
    edits = []
    previous = ""
    for tok in tokens:
        if tok.type == tokenize.NAME and tok.string == old and previous != ".":
            edits.append((tok.start, tok.end, new))
        if tok.type not in (tokenize.NL, tokenize.COMMENT):
            previous = tok.string
    return _splice(source, edits)


def replace_string(source: str, old: str, new: str) -> str:
    """*source* with every string literal equal to *old* replaced by one equal to *new*."""
    tokens = _tokens(source)
    if tokens is None:
        pattern = rf"""(['"]){re.escape(old)}\1"""
        return re.sub(pattern, lambda m: m.group(1) + new + m.group(1), source)
    edits = []
    for tok in tokens:
        if tok.type != tokenize.STRING:
            continue
        match = re.fullmatch(r"""([rRbBuU]?)(['"])(.*)\2""", tok.string, re.S)
        if match is None or match.group(3) != old:
            continue
        quote = match.group(2)
        body = new.replace("\\", "\\\\").replace(quote, "\\" + quote)
        edits.append((tok.start, tok.end, f"{match.group(1)}{quote}{body}{quote}"))
    return _splice(source, edits)


def _subscripted_frame(source: str, key: str) -> str | None:
    """``df`` in ``df['key']`` / ``df["key"]`` / ``df.loc[:, 'key']`` within *source*."""
    opener = r"(?:\.(?:loc|iloc|at)\[[^\]]*?,\s*|\[\s*)"
    pattern = rf"""(?P<name>[A-Za-z_][\w.]*?){opener}(['"]){re.escape(key)}\2"""
    match = re.search(pattern, source)
    return match.group("name") if match else None


def _closest(word: str, options: Iterable[str]) -> str | None:
    options = [o for o in options if o != word]
    lowered = {o.lower(): o for o in options}
    if word.lower() in lowered:
        return lowered[word.lower()]
    matches = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return matches[0] if matches else None


def _line_names(line: str) -> list[str]:
    """Plain names a source line uses (no keywords, builtins or attributes), in order."""
    tokens = _tokens(line.strip() + "\n") or []
    names: list[str] = []
    previous = ""
    for tok in tokens:
        if (
            tok.type == tokenize.NAME
            and previous != "."
            and not keyword.iskeyword(tok.string)
            and not hasattr(builtins, tok.string)
            and tok.string not in names
        ):
            names.append(tok.string)
        previous = tok.string
    return names[:6]


def _diagnostics(error: ErrorFacts, line: str | None) -> Fix:
    names = _line_names(line) if line else []
    header = f"# Diagnostics for {error.summary}".rstrip()
    if names:
        code = (
            f"{header}\n"
            f"# the values the failing line works with:  {line}\n"
            f"for _name in {tuple(names)!r}:\n"
            '    _value = globals().get(_name, "<not defined>")\n'
            '    print(f"{_name}: {type(_value).__name__} = {_value!r:.200}")\n'
        )
    else:
        code = f"{header}\nimport traceback\n\ntraceback.print_last(limit=3)\n"
    explanation = (
        f"The demo model has no automatic fix for {error.type}; this cell prints what the "
        "failing code was working with."
    )
    return Fix(code, explanation, fixed=False)


def proposed_fix(
    error: ErrorFacts,
    source: str | None,
    *,
    columns: Sequence[str] = (),
    frame: str | None = None,
    names: Sequence[str] = (),
) -> Fix:
    """The cell to propose for *error*: a real fix for a misspelt column or variable name.

    *columns* are the columns of *frame* (the subscripted variable), *names* the notebook's
    variable names. Anything else gets a diagnostics cell.
    """
    code = source if source is not None else (error.line or "")
    key = error.key
    if key is not None and columns and code:
        match = _closest(key, columns)
        if match is not None:
            where = f"`{frame}`" if frame else "the frame"
            return Fix(
                replace_string(code, key, match),
                f"{where} has no column {key!r}; the closest column is {match!r}.",
                fixed=True,
            )
    missing = error.missing_name
    if missing is not None and code:
        match = _closest(missing, names) or error.suggestion
        if match is not None and match != missing:
            return Fix(
                rename_variable(code, missing, match),
                f"`{missing}` is not defined; the notebook has `{match}`.",
                fixed=True,
            )
    return _diagnostics(error, error.line)


def _frame_columns(conv: Conversation, frame: str) -> tuple[str, ...]:
    for output in conv.outputs("inspect", name=frame):
        facts = frame_facts(output)
        if facts.columns:
            return facts.columns
    return ()


def _fix_step(conv: Conversation, delay_ms: int) -> Reply:
    asked = conv.last("last_error")
    if asked is None:
        return _call("last_error", {}, "fix")
    heading = f"## Why the cell failed\n\n{quoted_prompt(conv.prompt)}"
    answer = asked.output or ""
    error = error_facts(answer) or error_facts(conv.prompt)
    if error is None:
        text = (
            f"{heading}`notebook.last_error` reports no exception, so there is nothing to fix "
            f"yet. It answered:\n\n{_quote(answer)}\nRun the failing cell, then ask again."
        )
        return _answer(text, "fix", delay_ms)
    source = _error_source(conv, answer, error.line)
    if source is None and "cells" in conv.offered and conv.last("cells") is None:
        return _call("cells", {"last": 3}, "fix")
    code = source if source is not None else (error.line or "")
    frame = _subscripted_frame(code, error.key) if error.key is not None else None
    columns: tuple[str, ...] = ()
    if frame is not None:
        columns = _frame_columns(conv, frame)
        if not columns and "inspect" in conv.offered and conv.last("inspect", name=frame) is None:
            return _call("inspect", {"name": frame}, "fix")
    names: list[str] = []
    if error.missing_name is not None:
        names = [v.name for v in _known_variables(conv)]
        if not names and "variables" in conv.offered and conv.last("variables") is None:
            return _call("variables", {}, "fix")
    fix = proposed_fix(error, source, columns=columns, frame=frame, names=names)
    proposal = conv.last("propose_cell")
    if proposal is None and "propose_cell" in conv.offered:
        return _call("propose_cell", {"code": fix.code, "explanation": fix.explanation}, "fix")
    return _answer(_fix_answer(heading, error, fix, proposal), "fix", delay_ms)


def _fix_answer(heading: str, error: ErrorFacts, fix: Fix, proposal: NotebookCall | None) -> str:
    parts = [heading, f"`notebook.last_error` says the last cell raised `{error.summary}`"]
    parts.append(f" at\n\n{fence(error.line, 'python')}\n" if error.line else ".\n\n")
    parts.append(fix.explanation + "\n\n")
    shown = proposal is not None and proposal.output is not None
    refused = shown and proposal is not None and is_refusal(proposal.output or "")
    if shown and not refused:
        what = "the fixed cell" if fix.fixed else "a cell that prints diagnostics"
        parts.append(
            f"I proposed {what} with `notebook.propose_cell`: it is shown in this cell's output, "
            "and `%codex insert` puts it into a new cell below. Nothing has run."
        )
    else:
        why = (
            f"The notebook did not take the proposal ({_first_line(proposal.output or '')}). "
            if refused and proposal is not None
            else ""
        )
        parts.append(f"{why}Here is the cell to run instead:\n\n{fence(fix.code, 'python')}")
    return "".join(parts)


# --- run ------------------------------------------------------------------------------------


def _column_expression(prompt: str, frame: str, columns: Sequence[str]) -> str | None:
    """``df["price"].mean()`` when the prompt names a reduction and one of the columns."""
    words = re.findall(r"\w+", prompt.lower())
    reduction = next((_REDUCTIONS[w] for w in words if w in _REDUCTIONS), None)
    column = next((c for c in columns if c.lower() in words), None)
    if reduction is None or column is None:
        return None
    return f"{frame}[{column!r}].{reduction}()"


def _run_step(conv: Conversation, delay_ms: int) -> Reply:
    ran = conv.last("run_python")
    if ran is None:
        code = inline_code(conv.prompt)
        if code is None:
            frame = pick_frame(_known_variables(conv))
            if frame is None and "variables" in conv.offered and conv.last("variables") is None:
                return _call("variables", {}, "run")
            if frame is not None:
                columns = _frame_columns(conv, frame.name)
                code = _column_expression(conv.prompt, frame.name, columns) or (
                    f"{frame.name}.describe()"
                )
            else:
                code = "sorted(name for name in globals() if not name.startswith('_'))"
        return _call("run_python", {"code": code}, "run")
    code = str(ran.arguments.get("code", ""))
    out = ran.output or ""
    heading = f"## Ran in your kernel\n\n{quoted_prompt(conv.prompt)}"
    asked = f"I asked to run this with `notebook.run_python`:\n\n{fence(code, 'python')}\n"
    if is_refusal(out):
        text = (
            f"## Nothing ran\n\n{quoted_prompt(conv.prompt)}{asked}"
            f"It did not run: {_first_line(out)} Your kernel is unchanged."
        )
        return _answer(text, "run", delay_ms)
    error = error_facts(out)
    if error is not None:
        text = f"{heading}{asked}It raised `{error.summary}`:\n\n{_quote(out)}"
        return _answer(text, "run", delay_ms)
    shown = _quote(out) if out.strip() else "It printed nothing and returned nothing.\n"
    text = f"{heading}{asked}It ran in your kernel. What it gave back:\n\n{shown}"
    return _answer(text, "run", delay_ms)
