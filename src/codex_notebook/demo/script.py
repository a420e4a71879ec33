"""Decide what the demo model answers, from the request body alone.

Everything here is a pure function of a Responses API request body (or of a prompt), so the
behaviour is unit-testable without HTTP and is the same whichever order concurrent turns reach
the server: codex calls the model concurrently for concurrent turns, so choosing by arrival
order would hand one turn's answer to another.

The answer is chosen from the LAST user text of the request (codex resends the whole
conversation every time). A request whose input ends with a ``function_call_output`` is the
follow-up after a tool ran; it is answered with a text message that summarises that output.

Directive grammar (case-sensitive tokens, anywhere in the prompt; they win over keywords)::

    FAIL            HTTP 500 -> codex reports the turn as failed
    TOOL:<command>  call exec_command with {"cmd": <command>, "yield_time_ms": 1000};
                    <command> is the rest of that line minus any other directive tokens
                    (empty -> "pwd"); the follow-up answer summarises the output
    ESCALATE        add "sandbox_permissions": "require_escalated" and a "justification" to the
                    tool call (alone, without TOOL:, the command is "echo escalated"); codex asks
                    for approval under approval_policy "on-request"
    ECHO            the answer is the prompt text itself, one delta per word (+ its whitespace)
    DELTAS:N        the answer is "chunk0 chunk1 ... chunk{N-1}" in N deltas:
                    "chunk0", " chunk1", ..., " chunk{N-1}" (N clamped to 1..100000)
    DELAY_MS:N      sleep N ms before each delta (N clamped to 0..60000)
    SLOW            DELTAS:40 DELAY_MS:100 unless those are given explicitly

Precedence: FAIL > TOOL/ESCALATE > ECHO > DELTAS/SLOW > natural keywords. DELAY_MS applies to
any text answer (including tool summaries and JSON). With no directive, lower-case keywords pick
a notebook-friendly demo (first match wins; whole words, case-insensitive):

    fail*                          HTTP 500
    approv* / delete* / install*   an escalated, harmless ``echo`` that needs approval
    edit* / patch* / "create a file"
                                   apply_patch adding ``hello_demo.py`` (a fileChange item)
    "list files"                   ``ls -la``, then a summary of its output
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
from typing import Any, TypeAlias

from codex_notebook.demo.schema_sample import SchemaSampleError, sample_instance

__all__ = [
    "APPROVAL_COMMAND_ARGV",
    "DEMO_FILE_CONTENT",
    "DEMO_FILE_NAME",
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
FAIL_MESSAGE = "demo model: scripted failure"


@dataclass(frozen=True)
class TextAnswer:
    """Stream an assistant message: one ``response.output_text.delta`` per element of deltas."""

    deltas: tuple[str, ...]
    delay_ms: int = 0
    reason: str = ""

    @property
    def text(self) -> str:
        """The whole message, as codex reports it in the completed ``agentMessage`` item."""
        return "".join(self.deltas)


@dataclass(frozen=True)
class ToolCall:
    """Ask codex to run a function tool (``exec_command``); ``arguments`` is the JSON text sent."""

    name: str
    arguments: str
    reason: str = ""

    @property
    def parsed_arguments(self) -> dict[str, Any]:
        """The arguments as a dict, for tests and docs."""
        value = json.loads(self.arguments)
        return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class HttpFailure:
    """Answer the request with an HTTP error status instead of a stream."""

    status: int
    message: str
    reason: str = ""


Reply: TypeAlias = TextAnswer | ToolCall | HttpFailure


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
        )


_DELTAS_RE = re.compile(r"(?<![\w])DELTAS:(\d+)")
_DELAY_RE = re.compile(r"(?<![\w])DELAY_MS:(\d+)")
_TOOL_RE = re.compile(r"(?<![\w])TOOL:([^\n]*)")
_FLAG_RES = {
    name: re.compile(rf"(?<![\w:]){name}(?![\w:])") for name in ("ESCALATE", "FAIL", "ECHO", "SLOW")
}
_ANY_TOKEN_RE = re.compile(
    r"(?<![\w])(?:DELTAS:\d+|DELAY_MS:\d+)|(?<![\w:])(?:ESCALATE|FAIL|ECHO|SLOW)(?![\w:])"
)

_NATURAL_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("fail", re.compile(r"\bfail\w*", re.I)),
    ("approval", re.compile(r"\b(?:approv\w*|delete\w*|install\w*)", re.I)),
    ("edit", re.compile(r"\b(?:edit\w*|patch\w*)|\bcreate\s+(?:a\s+|the\s+|new\s+)*file", re.I)),
    ("list", re.compile(r"\blist\s+(?:the\s+|all\s+)*files?\b", re.I)),
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


def parse_directives(prompt: str) -> Directives:
    """Find the test directives in *prompt* (see the module docstring for the grammar)."""
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
    )


def deltas_text(count: int) -> tuple[str, ...]:
    """The DELTAS:N answer: ``("chunk0", " chunk1", ..., " chunk{N-1}")``."""
    return tuple(f"chunk{i}" if i == 0 else f" chunk{i}" for i in range(count))


def chunk_words(text: str) -> tuple[str, ...]:
    """Split *text* into word deltas, each word carrying the whitespace after it.

    Joining the result gives back *text* exactly (leading whitespace becomes its own delta).
    """
    stripped = text.lstrip()
    lead = text[: len(text) - len(stripped)]
    words = tuple(re.findall(r"\S+\s*", stripped))
    return ((lead,) if lead else ()) + words or ("",)


def _chunk_lines(text: str) -> tuple[str, ...]:
    """One delta per line (newline kept), for JSON documents."""
    return tuple(text.splitlines(keepends=True)) or ("",)


def _fence(body: str, info: str = "text") -> str:
    """A fenced block whose fence is longer than any backtick run inside *body*."""
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    if not body.endswith("\n"):
        body += "\n"
    return f"{fence}{info}\n{body}{fence}\n"


def _quoted_prompt(prompt: str) -> str:
    """The prompt's first line as a markdown quote (so each answer shows what it answers)."""
    first_line = next((line.strip() for line in prompt.splitlines() if line.strip()), "")
    if len(first_line) > 120:
        first_line = first_line[:117] + "..."
    return f"> {first_line}\n\n" if first_line else ""


def markdown_answer(prompt: str) -> str:
    """The default demo answer: a heading, the prompt quoted, a table and a code block."""
    asked = _quoted_prompt(prompt)
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
        "| `list files` or `run` | runs a harmless command, then summarises its output |\n"
        "| `install` or `approval` | asks you to approve a command first |\n"
        "| `edit` or `create a file` | writes `hello_demo.py` in the scratch workspace |\n"
        "| `slow` | streams a long answer slowly, so you can run other cells meanwhile |\n"
        "| `fail` | the model fails and the turn ends as failed |\n\n"
        "Here is some code to look at:\n\n"
        f"{_fence(code, 'python')}\n"
        "Ask again with one of the words above to see the other behaviours."
    )


def _slow_markdown(prompt: str) -> str:
    paragraphs = [
        "## A slow answer\n\n",
        _quoted_prompt(prompt),
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
) -> Reply:
    """What the demo model does when *prompt* is the last user text of a first model call.

    *schema* is the requested structured-output JSON Schema, if any; *workspace* (absolute path)
    is where natural-language demos run commands and write files. Useful to document the demo:
    ``script_for("list files")`` shows the tool call the model will make.
    """
    d = parse_directives(prompt)
    delay = d.delay_ms if d.delay_ms is not None else 0
    if d.fail:
        return HttpFailure(500, f"{FAIL_MESSAGE} (FAIL directive)", reason="directive:FAIL")
    if schema is not None:
        return _json_answer(schema, delay)
    if d.tool is not None or d.escalate:
        command = d.tool if d.tool is not None else "echo escalated"
        return ToolCall(
            "exec_command",
            _exec_arguments(command, escalate=d.escalate),
            reason="directive:TOOL" if d.tool is not None else "directive:ESCALATE",
        )
    if d.echo:
        return TextAnswer(chunk_words(prompt), delay, reason="directive:ECHO")
    if d.deltas is not None or d.slow:
        count = d.deltas if d.deltas is not None else SLOW_DELTAS
        if d.delay_ms is None and d.slow:
            delay = SLOW_DELAY_MS
        return TextAnswer(
            deltas_text(count), delay, reason="directive:DELTAS" if d.deltas else "directive:SLOW"
        )
    if d.delay_ms is not None:
        return TextAnswer(chunk_words(markdown_answer(prompt)), delay, reason="directive:DELAY_MS")
    return _natural(prompt, workspace)


def _natural(prompt: str, workspace: str | None) -> Reply:
    behaviour = next((name for name, rule in _NATURAL_RULES if rule.search(prompt)), "markdown")
    reason = f"keyword:{behaviour}"
    if behaviour == "fail":
        return HttpFailure(500, f"{FAIL_MESSAGE} (you asked it to fail)", reason=reason)
    if behaviour == "approval":
        command = shlex.join(APPROVAL_COMMAND_ARGV)
        args = _exec_arguments(command, escalate=True, workdir=workspace, login=False)
        return ToolCall("exec_command", args, reason=reason)
    if behaviour == "edit":
        args = _exec_arguments(_patch_command(workspace), escalate=False, workdir=workspace)
        return ToolCall("exec_command", args, reason=reason)
    if behaviour in ("list", "run"):
        command = "ls -la" if behaviour == "list" else "python3 --version"
        args = _exec_arguments(command, escalate=False, workdir=workspace, login=False)
        return ToolCall("exec_command", args, reason=reason)
    if behaviour == "slow":
        return TextAnswer(chunk_words(_slow_markdown(prompt)), NATURAL_SLOW_DELAY_MS, reason=reason)
    return TextAnswer(chunk_words(markdown_answer(prompt)), 0, reason=reason)


def _json_answer(schema: Mapping[str, Any], delay_ms: int) -> Reply:
    try:
        document = sample_instance(schema)
    except SchemaSampleError as exc:
        return HttpFailure(500, f"demo model cannot satisfy the output schema: {exc}", "json")
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
            return f"The patch was applied.\n\n{_fence(output[success:])}"
        return f"The patch was not applied. Codex reported:\n\n{_fence(output)}"
    if "\n" in shown:
        shown = shown.splitlines()[0] + " ..."
    match = _EXIT_CODE_RE.search(output)
    if match is None:
        return f"The command `{shown}` did not run. Codex reported:\n\n{_fence(output)}"
    marker = output.find("\nOutput:\n")
    body = output[marker + len("\nOutput:\n") :] if marker >= 0 else output
    return f"The command `{shown}` exited with code {match.group(1)}. Its output:\n\n{_fence(body)}"


def last_user_text(body: Mapping[str, Any]) -> str:
    """The text of the last user message in the request's ``input`` (codex context skipped)."""
    items = body.get("input")
    if isinstance(items, str):
        return items
    if not isinstance(items, list):
        return ""
    for item in reversed(items):
        if not isinstance(item, Mapping) or item.get("role") != "user":
            continue
        if item.get("type", "message") != "message":
            continue
        text = _message_text(item.get("content"))
        if text and not _CONTEXT_WRAPPER_RE.fullmatch(text):
            return text
    return ""


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


def _pending_tool_output(items: Sequence[Any]) -> tuple[str, str] | None:
    """(command, output) when the input ends with a tool result, else None."""
    if not items or not isinstance(items[-1], Mapping):
        return None
    last = items[-1]
    if last.get("type") not in ("function_call_output", "custom_tool_call_output"):
        return None
    output = last.get("output")
    if isinstance(output, list):
        output = "\n".join(part.get("text", "") for part in output if isinstance(part, Mapping))
    elif isinstance(output, Mapping):
        output = str(output.get("content", ""))
    output_text = output if isinstance(output, str) else ""
    command = ""
    call_id = last.get("call_id")
    for item in reversed(items):
        if (
            isinstance(item, Mapping)
            and item.get("type") in ("function_call", "custom_tool_call")
            and item.get("call_id") == call_id
        ):
            raw = item.get("arguments", item.get("input", ""))
            try:
                parsed = json.loads(raw) if isinstance(raw, str) else raw
            except ValueError:
                parsed = raw
            if isinstance(parsed, Mapping) and isinstance(parsed.get("cmd"), str):
                command = parsed["cmd"]
            elif isinstance(parsed, str):
                command = parsed
            break
    return command, output_text


def reply_for_request(body: Mapping[str, Any], *, workspace: str | None = None) -> Reply:
    """Choose the reply to one ``POST /v1/responses`` body (see the module docstring)."""
    prompt = last_user_text(body)
    directives = parse_directives(prompt)
    schema = output_schema(body)
    items = body.get("input")
    pending = _pending_tool_output(items) if isinstance(items, list) else None
    if pending is not None:
        delay = directives.delay_ms or 0
        if schema is not None:
            return _json_answer(schema, delay)
        command, output = pending
        text = summarise_tool_output(command, output)
        return TextAnswer(chunk_words(text), delay, reason="tool-summary")
    return script_for(prompt, schema=schema, workspace=workspace)
