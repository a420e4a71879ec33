"""What the demo model can answer with, and the small text helpers every script shares.

Kept apart from the decision logic so that :mod:`~codex_notebook.demo.script` (prompts,
directives) and :mod:`~codex_notebook.demo.kernel_story` (the notebook-tool stories) can both
build replies without importing each other.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, TypeAlias

__all__ = [
    "HttpFailure",
    "Reply",
    "TextAnswer",
    "ToolCall",
    "chunk_words",
    "fence",
    "quoted_prompt",
]


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
    """Ask codex to run a function tool; ``arguments`` is the JSON text sent.

    ``namespace`` is set for client-defined tools declared in a namespace (``"notebook"``):
    codex routes a ``function_call`` to ``item/tool/call`` only when it carries the tool's bare
    ``name`` plus that ``namespace`` (measured on 0.163.0 and 0.171.0; see
    :mod:`codex_notebook.demo.kernel_story`).
    """

    name: str
    arguments: str
    reason: str = ""
    namespace: str | None = None

    @property
    def parsed_arguments(self) -> dict[str, Any]:
        """The arguments as a dict, for tests and docs."""
        value = json.loads(self.arguments)
        return value if isinstance(value, dict) else {}

    @property
    def qualified_name(self) -> str:
        """``notebook.variables`` for a namespaced tool, else the bare name."""
        return f"{self.namespace}.{self.name}" if self.namespace else self.name


@dataclass(frozen=True)
class HttpFailure:
    """Answer the request with an HTTP error status and *message* as a plain-text body.

    codex shows a 400 response's plain-text body verbatim as the turn's error message (a 500
    becomes its own "We're currently experiencing high demand..." whatever the body says), so
    scripted failures use 400 and say that they are a demonstration.
    """

    status: int
    message: str
    reason: str = ""


Reply: TypeAlias = TextAnswer | ToolCall | HttpFailure


def chunk_words(text: str) -> tuple[str, ...]:
    """Split *text* into word deltas, each word carrying the whitespace after it.

    Joining the result gives back *text* exactly (leading whitespace becomes its own delta).
    """
    stripped = text.lstrip()
    lead = text[: len(text) - len(stripped)]
    words = tuple(re.findall(r"\S+\s*", stripped))
    return ((lead,) if lead else ()) + words or ("",)


def fence(body: str, info: str = "text") -> str:
    """A fenced block whose fence is longer than any backtick run inside *body*."""
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    marks = "`" * max(3, longest + 1)
    if not body.endswith("\n"):
        body += "\n"
    return f"{marks}{info}\n{body}{marks}\n"


def quoted_prompt(prompt: str) -> str:
    """The prompt's first line as a markdown quote (so each answer shows what it answers)."""
    first_line = next((line.strip() for line in prompt.splitlines() if line.strip()), "")
    if len(first_line) > 120:
        first_line = first_line[:117] + "..."
    return f"> {first_line}\n\n" if first_line else ""
