"""Decide what the demo model answers, from the request body alone.

Everything here is a pure function of a Responses API request body (or of a prompt), so the
behaviour is unit-testable without HTTP and is the same whichever order concurrent turns reach
the server: codex calls the model concurrently for concurrent turns, so choosing by arrival
order would hand one turn's answer to another.

The answer is chosen from the LAST user text of the request (codex resends the whole
conversation every time). A request whose input ends with a ``function_call_output`` is the
follow-up after a tool ran; it is answered with a text message that summarises that output, or,
for a notebook tool, with the next step of the story or directive that called it.

The notebook's client tools reach the model as one ``{"type": "namespace", "name": "notebook",
"tools": [...]}`` entry of the request's ``tools``; the model calls one by emitting a
``function_call`` with the bare tool ``name`` plus ``"namespace": "notebook"`` (codex then sends
the client ``item/tool/call``); any other spelling comes back as "unsupported call". Measured on
codex 0.163.0 and 0.171.0; details in :mod:`codex_notebook.demo.kernel_story`.

Directive grammar (case-sensitive tokens, anywhere in the prompt; they win over keywords)::

    FAIL            HTTP 400 with a plain-text body that says the failure is a demonstration
                    (codex shows a 400's text as the turn's error; a 500 would read as an
                    outage) -> codex reports the turn as failed
    TOOL:<command>  call exec_command with {"cmd": <command>, "yield_time_ms": 1000};
                    <command> is the rest of that line minus any other directive tokens
                    (empty -> "pwd"); the follow-up answer summarises the output
    ESCALATE        add "sandbox_permissions": "require_escalated" and a "justification" to the
                    tool call (alone, without TOOL:, the command is "echo escalated"); codex asks
                    for approval under approval_policy "on-request"
    NBTOOL:<tool> [ARGS:<json object>]
                    call the client tool <tool> of the "notebook" namespace with those
                    arguments (default {}); several NBTOOL tokens are called in order, one per
                    model request, and the answer then quotes every call's output. Called even
                    when the request does not offer the tool (codex then answers
                    "unsupported call: notebook<tool>", which is quoted too). An ARGS: that is
                    not a JSON object makes the answer say so instead.
    ECHO            the answer is the prompt text itself, one delta per word (+ its whitespace)
    DELTAS:N        the answer is "chunk0 chunk1 ... chunk{N-1}" in N deltas:
                    "chunk0", " chunk1", ..., " chunk{N-1}" (N clamped to 1..100000)
    DELAY_MS:N      sleep N ms before each delta (N clamped to 0..60000)
    SLOW            DELTAS:40 DELAY_MS:100 unless those are given explicitly

Precedence: FAIL > TOOL/ESCALATE > NBTOOL > ECHO > DELTAS/SLOW > natural language. DELAY_MS
applies to any text answer (including tool summaries and JSON).

Natural language, when the request offers the ``notebook`` tools (the notebook layer declares
them on every thread it starts): a prompt about a failure ("fix", "why did my cell fail?",
"error", "traceback"), about running or computing something in the kernel ("run `df.head()`",
"compute the mean price"; not "command"/"shell") or about the user's data ("what data do I
have?", "variables", "data frame") starts a kernel-tool story, see
:mod:`codex_notebook.demo.kernel_story`. Otherwise, and always without those tools, lower-case
keywords pick a notebook-friendly demo (first match wins; whole words, case-insensitive):

    fail*                          a demonstration failure (HTTP 400, labelled as such)
    approv* / delete* / install*   an escalated, harmless ``echo`` that needs approval
    edit* / patch* / "create a file"
                                   apply_patch adding ``hello_demo.py`` (a fileChange item)
    "list files"                   ``ls -l``, then a summary of its output (hidden entries are
                                   left out: inside codex's sandbox the workspace also shows
                                   empty read-only ``.git``, ``.codex``, ``.agents``, ``.aws``
                                   mount points, which are not on disk; the summary says so)
    run* / command*                ``python3 --version``, then a summary of its output
    slow*                          a long markdown answer, 60 ms between deltas
    anything else                  markdown with a heading, a table and a code block

Natural commands run with ``workdir`` = the scratch workspace (when the server knows it) and
``login: false`` (no shell profile noise in the output).

A request that asks for structured output (``text.format.type == "json_schema"``) is answered
with :func:`~codex_notebook.demo.schema_sample.sample_instance` of that schema, serialised with
``json.dumps(..., indent=2)`` and streamed one line per delta; only FAIL and DELAY_MS apply there
(tool directives and keywords are ignored so codex's own schema-constrained side calls never
start tools).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from codex_notebook.demo import kernel_story
from codex_notebook.demo.replies import (
    HttpFailure,
    Reply,
    TextAnswer,
    ToolCall,
    chunk_words,
    fence,
    quoted_prompt,
)
from codex_notebook.demo.schema_sample import SchemaSampleError, sample_instance

__all__ = [
    "APPROVAL_COMMAND_ARGV",
    "DEMO_FILE_CONTENT",
    "DEMO_FILE_NAME",
    "FAIL_DIRECTIVE_MESSAGE",
    "FAIL_KEYWORD_MESSAGE",
    "FAIL_STATUS",
    "LIST_COMMAND",
    "LIST_NOTE",
    "Directives",
    "HttpFailure",
    "Reply",
    "TextAnswer",
    "ToolCall",
    "chunk_words",
    "deltas_text",
    "last_user_text",
    "markdown_answer",
    "output_schema",
    "parse_directives",
    "reply_for_request",
    "script_for",
    "summarise_tool_output",
]

MAX_DELTAS = 100_000
MAX_DELAY_MS = 60_000
SLOW_DELTAS = 40
SLOW_DELAY_MS = 100
NATURAL_SLOW_DELAY_MS = 60
DEFAULT_YIELD_TIME_MS = 1000

DEMO_FILE_NAME = "hello_demo.py"
DEMO_FILE_CONTENT = (
    '"""Written by the codex-notebook demo model through apply_patch."""\n'
    "\n"
    "\n"
    "def greet(name: str) -> str:\n"
    '    return f"Hello, {name}!"\n'
    "\n"
    "\n"
    'if __name__ == "__main__":\n'
    '    print(greet("notebook"))\n'
)

# The natural-language approval demo's command. It is escalated AND listed as a "prompt" rule
# in the demo CODEX_HOME (see home.py), so codex asks for approval even where the sandbox had
# to be switched off (escalation alone means nothing under danger-full-access).
APPROVAL_COMMAND_ARGV = ("echo", "Approved. This demo command changes nothing.")
ESCALATE_JUSTIFICATION = "The demo model asks you to approve this harmless command."
FAIL_STATUS = 400  # codex shows a 400's plain-text body verbatim as the turn's error
FAIL_DIRECTIVE_MESSAGE = (
    "Demonstration: the demo model fails this turn on purpose (the prompt has the FAIL "
    "directive). Nothing is broken."
)
FAIL_KEYWORD_MESSAGE = (
    "Demonstration: the demo model fails this turn on purpose because your prompt asked it to "
    "fail. Nothing is broken; ask anything else to continue."
)
LIST_COMMAND = "ls -l"
LIST_NOTE = (
    "`ls -l` leaves out hidden entries. Inside codex's sandbox the workspace also shows empty, "
    "read-only `.git`, `.codex`, `.agents` and `.aws` folders: codex mounts them there so the "
    "agent cannot create those files. They are not on disk."
)


@dataclass(frozen=True)
class Directives:
    """The test directives found in one prompt (None / False when absent)."""

    deltas: int | None = None
    delay_ms: int | None = None
    tool: str | None = None
    escalate: bool = False
    fail: bool = False
    echo: bool = False
    slow: bool = False
    nbtools: tuple[tuple[str, dict[str, Any]], ...] = ()
    nbtool_error: str | None = None

    @property
    def any(self) -> bool:
        """True when at least one directive token was present."""
        return (
            self.deltas is not None
            or self.delay_ms is not None
            or self.tool is not None
            or self.escalate
            or self.fail
            or self.echo
            or self.slow
            or bool(self.nbtools)
            or self.nbtool_error is not None
        )


_DELTAS_RE = re.compile(r"(?<![\w])DELTAS:(\d+)")
_DELAY_RE = re.compile(r"(?<![\w])DELAY_MS:(\d+)")
_TOOL_RE = re.compile(r"(?<![\w])TOOL:([^\n]*)")
_NBTOOL_RE = re.compile(r"(?<![\w])NBTOOL:([A-Za-z0-9_-]+)")
_ARGS_RE = re.compile(r"\s*ARGS:")
_FLAG_RES = {
    name: re.compile(rf"(?<![\w:]){name}(?![\w:])") for name in ("ESCALATE", "FAIL", "ECHO", "SLOW")
}
_ANY_TOKEN_RE = re.compile(
    r"(?<![\w])(?:DELTAS:\d+|DELAY_MS:\d+|NBTOOL:[A-Za-z0-9_-]+)"
    r"|(?<![\w:])(?:ESCALATE|FAIL|ECHO|SLOW)(?![\w:])"
)

_NATURAL_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("fail", re.compile(r"\bfail\w*", re.I)),
    ("approval", re.compile(r"\b(?:approv\w*|delete\w*|install\w*)", re.I)),
    ("edit", re.compile(r"\b(?:edit\w*|patch\w*)|\bcreate\s+(?:a\s+|the\s+|new\s+)*file", re.I)),
    ("list", re.compile(r"\blist\s+(?:the\s+|all\s+|your\s+|my\s+)*files?\b", re.I)),
    ("run", re.compile(r"\b(?:run\w*|command\w*)", re.I)),
    ("slow", re.compile(r"\bslow\w*", re.I)),
)

# Codex wraps its own context in user messages such as <environment_context>...</...>; those
# are never the prompt. Every such wrapper tag seen so far contains an underscore, which keeps
# a prompt like "<b>hi</b>" from being mistaken for one.
_CONTEXT_WRAPPER_RE = re.compile(r"\s*<([a-z]+_[a-z_]+)\b[^>]*>.*</\1>\s*", re.S)

_EXIT_CODE_RE = re.compile(r"^Process exited with code (-?\d+)\s*$", re.M)


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def _parse_nbtools(prompt: str) -> tuple[tuple[tuple[str, dict[str, Any]], ...], str | None]:
    """Every ``NBTOOL:<tool> [ARGS:<json>]`` in order, or an error text for a bad ARGS."""
    calls: list[tuple[str, dict[str, Any]]] = []
    decoder = json.JSONDecoder()
    for match in _NBTOOL_RE.finditer(prompt):
        args: Any = {}
        rest = _ARGS_RE.match(prompt, match.end())
        if rest is not None:
            try:
                args, _end = decoder.raw_decode(prompt, rest.end())
            except ValueError as exc:
                return (), f"ARGS of NBTOOL:{match.group(1)} is not valid JSON ({exc})"
            if not isinstance(args, dict):
                return (), f"ARGS of NBTOOL:{match.group(1)} must be a JSON object"
        calls.append((match.group(1), args))
    return tuple(calls), None


def parse_directives(prompt: str) -> Directives:
    """Find the test directives in *prompt* (see the module docstring for the grammar)."""
    nbtools, nbtool_error = _parse_nbtools(prompt)
    deltas_match = _DELTAS_RE.search(prompt)
    delay_match = _DELAY_RE.search(prompt)
    tool_match = _TOOL_RE.search(prompt)
    tool: str | None = None
    if tool_match is not None:
        rest = _ANY_TOKEN_RE.sub(" ", tool_match.group(1))
        tool = " ".join(rest.split()) or "pwd"
    return Directives(
        deltas=_clamp(int(deltas_match.group(1)), 1, MAX_DELTAS) if deltas_match else None,
        delay_ms=_clamp(int(delay_match.group(1)), 0, MAX_DELAY_MS) if delay_match else None,
        tool=tool,
        escalate=bool(_FLAG_RES["ESCALATE"].search(prompt)),
        fail=bool(_FLAG_RES["FAIL"].search(prompt)),
        echo=bool(_FLAG_RES["ECHO"].search(prompt)),
        slow=bool(_FLAG_RES["SLOW"].search(prompt)),
        nbtools=nbtools,
        nbtool_error=nbtool_error,
    )


def deltas_text(count: int) -> tuple[str, ...]:
    """The DELTAS:N answer: ``("chunk0", " chunk1", ..., " chunk{N-1}")``."""
    return tuple(f"chunk{i}" if i == 0 else f" chunk{i}" for i in range(count))


def _chunk_lines(text: str) -> tuple[str, ...]:
    """One delta per line (newline kept), for JSON documents."""
    return tuple(text.splitlines(keepends=True)) or ("",)


_KERNEL_ROWS = (
    "| `what data do I have?` | looks at your variables with the notebook's kernel tools |\n"
    "| `why did my cell fail?` | reads the last error and proposes a fixed cell |\n"
    "| ``run `df.describe()` `` | runs code in your kernel once you approve it |\n"
)


def markdown_answer(prompt: str, *, kernel_tools: bool = False) -> str:
    """The default demo answer: a heading, the prompt quoted, a table and a code block.

    With *kernel_tools* (the request offers the ``notebook`` tools) the table also lists the
    prompts that use them.
    """
    asked = quoted_prompt(prompt)
    code = (
        "def fibonacci(n: int) -> list[int]:\n"
        '    """The first n Fibonacci numbers."""\n'
        "    numbers, a, b = [], 0, 1\n"
        "    for _ in range(n):\n"
        "        numbers.append(a)\n"
        "        a, b = b, a + b\n"
        "    return numbers\n"
        "\n"
        "print(fibonacci(10))\n"
    )
    return (
        "## Demo answer\n\n"
        f"{asked}"
        "This is the **offline demo model** of codex-notebook. It needs no account and no "
        "network, and it answers every prompt the same way each time.\n\n"
        "| Try a prompt with | What happens |\n"
        "|---|---|\n"
        + (_KERNEL_ROWS if kernel_tools else "")
        + "| `list files` or `run a command` | runs a harmless command, then summarises its "
        "output |\n"
        "| `install` or `approval` | asks you to approve a command first |\n"
        "| `edit` or `create a file` | writes `hello_demo.py` in the scratch workspace |\n"
        "| `slow` | streams a long answer slowly, so you can run other cells meanwhile |\n"
        "| `fail` | a demonstration failure: the turn ends as failed |\n\n"
        "Here is some code to look at:\n\n"
        f"{fence(code, 'python')}\n"
        "Ask again with one of the words above to see the other behaviours."
    )


def _slow_markdown(prompt: str) -> str:
    paragraphs = [
        "## A slow answer\n\n",
        quoted_prompt(prompt),
        "This answer streams word by word with a pause between words, the way a large model "
        "thinks out loud. While it runs, the notebook kernel stays free: start another cell "
        "on a different thread name and both answers stream at the same time.\n\n",
        "1. Each `%%codex` cell gets its own live output.\n",
        "2. Turns on different threads run concurrently in one codex process.\n",
        "3. Cells on the same thread queue behind each other.\n\n",
        "When this paragraph ends, the turn completes and the cell keeps a static rendering "
        "of the final text.",
    ]
    return "".join(paragraphs)


def _exec_arguments(
    command: str,
    *,
    escalate: bool,
    workdir: str | None = None,
    login: bool | None = None,
) -> str:
    args: dict[str, Any] = {"cmd": command, "yield_time_ms": DEFAULT_YIELD_TIME_MS}
    if workdir is not None:
        args["workdir"] = workdir
    if login is not None:
        args["login"] = login
    if escalate:
        args["sandbox_permissions"] = "require_escalated"
        args["justification"] = ESCALATE_JUSTIFICATION
    return json.dumps(args)


def _patch_command(workspace: str | None) -> str:
    """A shell ``apply_patch`` heredoc; codex intercepts it and emits a ``fileChange`` item."""
    path = DEMO_FILE_NAME if workspace is None else f"{workspace.rstrip('/')}/{DEMO_FILE_NAME}"
    added = "".join(f"+{line}\n" for line in DEMO_FILE_CONTENT.splitlines())
    return (
        "apply_patch <<'PATCH'\n"
        "*** Begin Patch\n"
        f"*** Add File: {path}\n"
        f"{added}"
        "*** End Patch\n"
        "PATCH\n"
    )


def script_for(
    prompt: str,
    *,
    schema: Mapping[str, Any] | None = None,
    workspace: str | None = None,
    kernel_tools: frozenset[str] = frozenset(),
) -> Reply:
    """What the demo model does when *prompt* is the last user text of a first model call.

    *schema* is the requested structured-output JSON Schema, if any; *workspace* (absolute path)
    is where natural-language demos run commands and write files; *kernel_tools* the
    ``notebook`` tools the request offers. Useful to document the demo:
    ``script_for("list files")`` shows the tool call the model will make.
    """
    conv = kernel_story.Conversation(prompt, kernel_tools)
    return _first_reply(parse_directives(prompt), conv, schema, workspace)


def _first_reply(
    d: Directives,
    conv: kernel_story.Conversation,
    schema: Mapping[str, Any] | None,
    workspace: str | None,
) -> Reply:
    prompt = conv.prompt
    delay = d.delay_ms if d.delay_ms is not None else 0
    if d.fail:
        return HttpFailure(FAIL_STATUS, FAIL_DIRECTIVE_MESSAGE, reason="directive:FAIL")
    if schema is not None:
        return _json_answer(schema, delay)
    if d.tool is not None or d.escalate:
        command = d.tool if d.tool is not None else "echo escalated"
        return ToolCall(
            "exec_command",
            _exec_arguments(command, escalate=d.escalate),
            reason="directive:TOOL" if d.tool is not None else "directive:ESCALATE",
        )
    if d.nbtools or d.nbtool_error is not None:
        return _nbtool_step(d, conv, delay)
    if d.echo:
        return TextAnswer(chunk_words(prompt), delay, reason="directive:ECHO")
    if d.deltas is not None or d.slow:
        count = d.deltas if d.deltas is not None else SLOW_DELTAS
        if d.delay_ms is None and d.slow:
            delay = SLOW_DELAY_MS
        return TextAnswer(
            deltas_text(count), delay, reason="directive:DELTAS" if d.deltas else "directive:SLOW"
        )
    tools = bool(conv.offered)
    if d.delay_ms is not None:
        text = markdown_answer(prompt, kernel_tools=tools)
        return TextAnswer(chunk_words(text), delay, reason="directive:DELAY_MS")
    if tools:
        story = kernel_story.story_for(prompt)
        if story is not None:
            return kernel_story.story_step(conv, story)
    return _natural(prompt, workspace, kernel_tools=tools)


def _nbtool_step(d: Directives, conv: kernel_story.Conversation, delay_ms: int) -> Reply:
    """The next NBTOOL call of the prompt, or (all made) the answer quoting their outputs."""
    if d.nbtool_error is not None:
        text = f"The NBTOOL directive could not be followed: {d.nbtool_error}."
        return TextAnswer(chunk_words(text), delay_ms, reason="directive:NBTOOL")
    made = len(conv.turn_calls)
    if made < len(d.nbtools):
        tool, args = d.nbtools[made]
        return ToolCall(
            tool, json.dumps(args), reason="directive:NBTOOL", namespace=kernel_story.NAMESPACE
        )
    return TextAnswer(chunk_words(_calls_summary(conv)), delay_ms, reason="directive:NBTOOL")


def _calls_summary(conv: kernel_story.Conversation) -> str:
    """Each notebook call of this turn with its arguments and what it answered."""
    parts = []
    for call in conv.turn_calls:
        args = json.dumps(dict(call.arguments), ensure_ascii=False)
        output = call.output if call.output is not None else "(no answer)"
        parts.append(f"`notebook.{call.tool}` {args} answered:\n\n{fence(output)}")
    return "\n".join(parts) or "No notebook tool was called."


def _natural(prompt: str, workspace: str | None, *, kernel_tools: bool = False) -> Reply:
    behaviour = next((name for name, rule in _NATURAL_RULES if rule.search(prompt)), "markdown")
    reason = f"keyword:{behaviour}"
    if behaviour == "fail":
        return HttpFailure(FAIL_STATUS, FAIL_KEYWORD_MESSAGE, reason=reason)
    if behaviour == "approval":
        command = shlex.join(APPROVAL_COMMAND_ARGV)
        args = _exec_arguments(command, escalate=True, workdir=workspace, login=False)
        return ToolCall("exec_command", args, reason=reason)
    if behaviour == "edit":
        args = _exec_arguments(_patch_command(workspace), escalate=False, workdir=workspace)
        return ToolCall("exec_command", args, reason=reason)
    if behaviour in ("list", "run"):
        command = LIST_COMMAND if behaviour == "list" else "python3 --version"
        args = _exec_arguments(command, escalate=False, workdir=workspace, login=False)
        return ToolCall("exec_command", args, reason=reason)
    if behaviour == "slow":
        return TextAnswer(chunk_words(_slow_markdown(prompt)), NATURAL_SLOW_DELAY_MS, reason=reason)
    text = markdown_answer(prompt, kernel_tools=kernel_tools)
    return TextAnswer(chunk_words(text), 0, reason=reason)


def _json_answer(schema: Mapping[str, Any], delay_ms: int) -> Reply:
    try:
        document = sample_instance(schema)
    except SchemaSampleError as exc:
        message = f"The demo model cannot satisfy the requested output schema: {exc}"
        return HttpFailure(FAIL_STATUS, message, reason="json")
    text = json.dumps(document, indent=2, ensure_ascii=False)
    return TextAnswer(_chunk_lines(text), delay_ms, reason="structured-output")


def summarise_tool_output(command: str, output: str) -> str:
    """The follow-up answer after a tool ran: exit status plus the output in a code block.

    *output* is codex's ``function_call_output`` text ("Chunk ID: ...\\nProcess exited with code
    N\\n...\\nOutput:\\n<text>"); anything else (a rejection, a patch result) is quoted whole.
    """
    shown = command.strip()
    if shown.startswith("apply_patch"):
        success = output.find("Success.")
        if success >= 0:
            return f"The patch was applied.\n\n{fence(output[success:])}"
        return f"The patch was not applied. Codex reported:\n\n{fence(output)}"
    if "\n" in shown:
        shown = shown.splitlines()[0] + " ..."
    match = _EXIT_CODE_RE.search(output)
    if match is None:
        return f"The command `{shown}` did not run. Codex reported:\n\n{fence(output)}"
    marker = output.find("\nOutput:\n")
    body = output[marker + len("\nOutput:\n") :] if marker >= 0 else output
    text = f"The command `{shown}` exited with code {match.group(1)}. Its output:\n\n{fence(body)}"
    if shown == LIST_COMMAND:
        text += f"\n{LIST_NOTE}"
    return text


def last_user_text(body: Mapping[str, Any]) -> str:
    """The text of the last user message in the request's ``input`` (codex context skipped)."""
    return _last_user(body)[0]


def _last_user(body: Mapping[str, Any]) -> tuple[str, int | None]:
    """The last user prompt's text and its index in ``input`` (None: a bare string input)."""
    items = body.get("input")
    if isinstance(items, str):
        return items, None
    if not isinstance(items, list):
        return "", None
    for index in range(len(items) - 1, -1, -1):
        item = items[index]
        if not isinstance(item, Mapping) or item.get("role") != "user":
            continue
        if item.get("type", "message") != "message":
            continue
        text = _message_text(item.get("content"))
        if text and not _CONTEXT_WRAPPER_RE.fullmatch(text):
            return text, index
    return "", None


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = [
        part["text"]
        for part in content
        if isinstance(part, Mapping)
        and part.get("type") in ("input_text", "text", "output_text")
        and isinstance(part.get("text"), str)
    ]
    return "\n".join(parts)


def output_schema(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The JSON Schema of a structured-output request (``text.format``), else None."""
    text = body.get("text")
    if not isinstance(text, Mapping):
        return None
    fmt = text.get("format")
    if not isinstance(fmt, Mapping) or fmt.get("type") != "json_schema":
        return None
    schema = fmt.get("schema")
    return schema if isinstance(schema, Mapping) else None


def _pending_tool_output(items: Sequence[Any]) -> tuple[Mapping[str, Any], str] | None:
    """(the call, its output text) when the input ends with a tool result, else None."""
    if not items or not isinstance(items[-1], Mapping):
        return None
    last = items[-1]
    if last.get("type") not in ("function_call_output", "custom_tool_call_output"):
        return None
    text = kernel_story.output_text(last.get("output"))
    call_id = last.get("call_id")
    for item in reversed(items):
        if (
            isinstance(item, Mapping)
            and item.get("type") in ("function_call", "custom_tool_call")
            and item.get("call_id") == call_id
        ):
            return item, text
    return {}, text


def _command_of(call: Mapping[str, Any]) -> str:
    raw = call.get("arguments", call.get("input", ""))
    try:
        parsed = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        parsed = raw
    if isinstance(parsed, Mapping) and isinstance(parsed.get("cmd"), str):
        return str(parsed["cmd"])
    return parsed if isinstance(parsed, str) else ""


def reply_for_request(body: Mapping[str, Any], *, workspace: str | None = None) -> Reply:
    """Choose the reply to one ``POST /v1/responses`` body (see the module docstring)."""
    prompt, prompt_index = _last_user(body)
    directives = parse_directives(prompt)
    schema = output_schema(body)
    conv = kernel_story.conversation(body, prompt, prompt_index)
    items = body.get("input")
    pending = _pending_tool_output(items) if isinstance(items, list) else None
    if pending is None:
        return _first_reply(directives, conv, schema, workspace)
    delay = directives.delay_ms or 0
    if schema is not None:
        return _json_answer(schema, delay)
    call, output = pending
    if call.get("namespace") == kernel_story.NAMESPACE:
        if directives.nbtools:
            return _nbtool_step(directives, conv, delay)
        story = kernel_story.story_for(prompt)
        if story is not None:
            return kernel_story.story_step(conv, story, delay_ms=delay)
        return TextAnswer(chunk_words(_calls_summary(conv)), delay, reason="tool-summary")
    text = summarise_tool_output(_command_of(call), output)
    return TextAnswer(chunk_words(text), delay, reason="tool-summary")
