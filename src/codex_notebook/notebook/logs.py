"""Sort ``%codex log`` lines into known-harmless noise and what deserves a look.

``codex app-server`` writes ERROR and WARNING lines, and sends ``warning`` / ``configWarning`` /
``deprecationNotice`` notifications, for things that are normal in a notebook: it uses its own
bundled bubblewrap, it will not create helper shortcuts under a temporary CODEX_HOME, it knows no
metadata for the demo model, it logs every command the user declined. Printed as they come, they
bury the one line that matters. :func:`classify` recognises the known ones (each rule below was
seen on a real binary; fixtures in ``tests/fixtures/logs/``, recorded by
``scripts/capture_log_fixtures.py`` on codex 0.163.0 and 0.171.0) and :func:`format_log` prints
real problems first and folds the harmless lines into a short counted section that says why each
is harmless.

Pure functions of strings and dicts; no I/O, no state.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .text import strip_ansi

__all__ = [
    "LogKind",
    "LogLine",
    "classify",
    "classify_notification",
    "format_log",
    "parse_log",
]

LogKind = Literal["harmless", "info", "warning", "error"]

# tracing's format: "2026-12-01T12:34:37.295885Z ERROR codex_core::session: message"
_TRACING_RE = re.compile(
    r"^(?:\d{4}-\d\d-\d\dT[\d:.]+Z?\s+)?(?P<level>ERROR|WARN|WARNING|INFO|DEBUG|TRACE)\b"
    r"(?:\s+(?P<target>[\w:]+)(?:\{[^}]*\})?:)?\s*(?P<message>.*)$"
)
_PLAIN_LEVEL_RE = re.compile(r"^(?P<level>ERROR|WARNING|WARN|Error|Warning)\s*:\s*(?P<message>.*)$")
# How the notebook session stores notifications today: "<method>: <text>".
_NOTE_PREFIX_RE = re.compile(
    r"^(?P<method>warning|configWarning|deprecationNotice|error)\s*:\s*(?P<text>.*)$", re.S
)
_RETRY_RE = re.compile(r"willRetry\W*:\s*(?:True|true)")
_SERIOUS_RE = re.compile(
    r"panicked at|\bfatal\b|Traceback \(most recent call last\)|segfault", re.I
)
_LEVEL_KIND: dict[str, LogKind] = {
    "ERROR": "error",
    "WARN": "warning",
    "WARNING": "warning",
    "INFO": "info",
    "DEBUG": "info",
    "TRACE": "info",
}


@dataclass(frozen=True)
class LogLine:
    """One classified log line.

    ``kind``: ``harmless`` (known and expected; ``reason`` says why), ``info``, ``warning`` or
    ``error``. ``rule`` names the known pattern that matched (None for unknown lines), ``text``
    is the line without terminal colours, ``source`` where it came from (``stderr``,
    ``notification``, ``notebook``).
    """

    kind: LogKind
    reason: str | None
    text: str
    rule: str | None = None
    source: str = "stderr"


@dataclass(frozen=True)
class _Rule:
    name: str
    pattern: re.Pattern[str]
    kind: LogKind
    reason: str


# First match wins. Each rule was observed on codex 0.163.0 and 0.171.0 (see the fixtures).
_RULES: tuple[_Rule, ...] = (
    _Rule(
        "bundled-bubblewrap",
        re.compile(r"could not find bubblewrap on PATH", re.I),
        "harmless",
        "codex sandboxes commands with the bubblewrap bundled in it; installing your system's "
        "bubblewrap package only silences this",
    ),
    _Rule(
        "helper-aliases",
        re.compile(r"could not create PATH aliases|Refusing to create helper binaries", re.I),
        "harmless",
        "CODEX_HOME is under a temporary folder (the demo's is), so codex skips its helper-command "
        "shortcuts; commands still run",
    ),
    _Rule(
        "model-metadata",
        re.compile(r"Model metadata for .* not found", re.I),
        "harmless",
        "codex has no built-in profile for this model name (the demo model, or a custom one) and "
        "uses defaults",
    ),
    _Rule(
        "full-history-hydration",
        re.compile(r"Full-history hydration is deprecated", re.I),
        "harmless",
        "a notice for client developers: resuming a thread loads its whole history, which codex "
        "plans to page instead; nothing is wrong",
    ),
    _Rule(
        "thread-store-conflict",
        re.compile(r"thread-store conflict|already has an active writer", re.I),
        "harmless",
        "another codex process still had this thread open (usually the previous kernel's "
        "app-server, still exiting); it is free again once that process ends",
    ),
    _Rule(
        "declined-command",
        re.compile(r"rejected by user", re.I),
        "harmless",
        "you declined a command; codex logs every declined command as an error",
    ),
    _Rule(
        "remote-control-off",
        re.compile(r"remoteControl/status/changed.*disabled", re.I),
        "harmless",
        "remote control is off, as it should be",
    ),
    _Rule(
        "demo-failure",
        re.compile(r"Demonstration: the demo model fails this turn on purpose", re.I),
        "info",
        "a failure the demo model produces on purpose, because the prompt asked for it",
    ),
    _Rule(
        "demo-sandbox-fallback",
        re.compile(r"Demo backend: codex's sandbox cannot start", re.I),
        "info",
        "the demo runs its scripted commands unsandboxed here; your own codex setup is unchanged",
    ),
    _Rule(
        "unsupported-tool",
        re.compile(r"unsupported call:", re.I),
        "warning",
        "the model called a tool this thread does not have; codex told the model so",
    ),
    _Rule(
        "model-reconnecting",
        re.compile(r"Reconnecting\.\.\.|waiting for network|error sending request", re.I),
        "warning",
        "codex cannot reach the model server and keeps retrying",
    ),
)


def _strip(text: str) -> str:
    # every terminal escape, not only colours: a hyperlink (OSC 8) or a clipboard write
    # (OSC 52) in server text would be live where %codex log is printed to a terminal
    return strip_ansi(text).rstrip()


def _match_rule(text: str) -> _Rule | None:
    return next((rule for rule in _RULES if rule.pattern.search(text)), None)


def _level_kind(text: str) -> LogKind:
    """The kind a line's own level gives it (no rule matched)."""
    tracing = _TRACING_RE.match(text)
    if tracing is not None:
        return _LEVEL_KIND[tracing.group("level")]
    plain = _PLAIN_LEVEL_RE.match(text)
    if plain is not None:
        return _LEVEL_KIND[plain.group("level").upper()]
    return "error" if _SERIOUS_RE.search(text) else "info"


def classify(line: str, *, source: str = "stderr") -> LogLine:
    """Classify one log line: a stderr line, or a ``"<method>: <text>"`` notification entry.

    Known patterns win; otherwise the line's own level decides (``ERROR`` -> error, ``WARN`` ->
    warning, other levels and unlevelled text -> info, except panics and tracebacks -> error).
    """
    text = _strip(line)
    note = _NOTE_PREFIX_RE.match(text)
    rule = _match_rule(text)
    if rule is not None:
        return LogLine(rule.kind, rule.reason, text, rule.name, "notification" if note else source)
    if note is not None:
        kind = _notification_kind(note.group("method"), note.group("text"))
        return LogLine(kind, None, text, None, "notification")
    return LogLine(_level_kind(text), None, text, None, source)


def _notification_kind(method: str, text: str) -> LogKind:
    if method == "error":
        return "warning" if _RETRY_RE.search(text) else "error"
    if method == "deprecationNotice":
        return "info"
    return "warning"


def classify_notification(method: str, params: Mapping[str, Any] | None) -> LogLine:
    """Classify a ``warning`` / ``configWarning`` / ``deprecationNotice`` / ``error`` notification.

    The line's text is ``"<method>: <message>"`` (for ``error``, the error's message plus its
    ``additionalDetails``, and "(codex will retry)" when ``willRetry`` is true).
    """
    params = params or {}
    retrying = False
    if method == "error" and isinstance(params.get("error"), Mapping):
        error = params["error"]
        message = str(error.get("message") or "")
        if error.get("additionalDetails"):
            message += f" ({error['additionalDetails']})"
        retrying = bool(params.get("willRetry"))
        if retrying:
            message += " (codex will retry)"
    else:
        message = str(params.get("message") or params.get("summary") or "")
        details = params.get("details")
        if details:
            message += f" {details}"
    if not message:
        message = json.dumps(dict(params), ensure_ascii=False, sort_keys=True)
    text = _strip(f"{method}: {message}")
    rule = _match_rule(text)
    if rule is not None:
        return LogLine(rule.kind, rule.reason, text, rule.name, "notification")
    if method == "error":
        kind: LogKind = "warning" if retrying else "error"
    else:
        kind = "info" if method == "deprecationNotice" else "warning"
    return LogLine(kind, None, text, None, "notification")


def parse_log(text: str, *, source: str = "stderr") -> list[LogLine]:
    """Classify every non-empty line of *text* (e.g. an app-server stderr tail)."""
    return [classify(line, source=source) for line in text.splitlines() if line.strip()]


_ORDER: dict[LogKind, int] = {"error": 0, "warning": 1, "info": 2, "harmless": 3}
_LABEL: dict[LogKind, str] = {"error": "ERROR  ", "warning": "WARNING", "info": "       "}
_SUMMARY_NAMES: dict[LogKind, str] = {
    "error": "error(s)",
    "warning": "warning(s)",
    "info": "other",
    "harmless": "known harmless",
}
_EXAMPLE_CHARS = 110


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_log(entries: Iterable[LogLine | str]) -> str:
    """The ``%codex log`` text: problems first, then other lines, then harmless ones folded.

    Errors and warnings keep their order and are marked; info lines follow; known-harmless lines
    collapse into one counted line per rule with its reason and a shortened example. Plain
    strings are classified first (multi-line strings line by line).
    """
    lines: list[LogLine] = []
    for entry in entries:
        if isinstance(entry, LogLine):
            lines.append(entry)
        else:
            lines.extend(parse_log(entry))
    if not lines:
        return "(nothing logged yet)"
    counts = {kind: sum(1 for line in lines if line.kind == kind) for kind in _ORDER}
    summary = ", ".join(
        f"{counts[kind]} {name}" for kind, name in _SUMMARY_NAMES.items() if counts[kind]
    )
    out = [f"codex log: {summary}"]
    shown = sorted(
        (line for line in lines if line.kind != "harmless"), key=lambda line: _ORDER[line.kind]
    )
    if shown:
        out.append("")
        for line in shown:
            body = line.text.replace("\n", "\n         ")
            note = f"\n         — {line.reason}" if line.reason else ""
            out.append(f"{_LABEL[line.kind]}  {body}{note}")
    harmless = [line for line in lines if line.kind == "harmless"]
    if harmless:
        out.append("")
        out.append(f"Known harmless ({len(harmless)} line(s), folded):")
        groups: dict[str, list[LogLine]] = {}
        for line in harmless:
            groups.setdefault(line.rule or line.text, []).append(line)
        for group in groups.values():
            first = group[0]
            out.append(f"  {len(group)}× {first.reason}")
            out.append(f"      e.g. {_shorten(first.text, _EXAMPLE_CHARS)}")
    return "\n".join(out)
