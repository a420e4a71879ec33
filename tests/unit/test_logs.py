"""``%codex log`` classification, checked against what real codex builds logged.

The fixtures in tests/fixtures/logs/ were recorded from codex 0.163.0 and 0.171.0 by
scripts/capture_log_fixtures.py; every record there must land in the expected rule, and lines
nobody has seen before must keep their own severity so a real error stands out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from codex_notebook.notebook.logs import (
    LogLine,
    classify,
    classify_notification,
    format_log,
    parse_log,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "logs"
BUILDS = sorted(FIXTURES.glob("codex-*.jsonl"))

# (a text every such record contains, the rule it must match, its kind)
EXPECTED = [
    ("could not create PATH aliases", "helper-aliases", "harmless"),
    ("could not find bubblewrap on PATH", "bundled-bubblewrap", "harmless"),
    ("Model metadata for `mock-model` not found", "model-metadata", "harmless"),
    ("rejected by user", "declined-command", "harmless"),
    ("Full-history hydration is deprecated", "full-history-hydration", "harmless"),
    ("thread-store conflict", "thread-store-conflict", "harmless"),
    ("unsupported call: notebookno_such_tool", "unsupported-tool", "warning"),
    ("Reconnecting... waiting for network", "model-reconnecting", "warning"),
    ("Demonstration: the demo model fails", "demo-failure", "info"),
    ("Demo backend: codex's sandbox cannot start", "demo-sandbox-fallback", "info"),
]


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _classified(record: dict[str, Any]) -> LogLine:
    if record["source"] == "notification":
        return classify_notification(record["method"], record["params"])
    return classify(record["line"], source=record["source"])


def _raw(record: dict[str, Any]) -> str:
    return record.get("line") or json.dumps(record.get("params"))


def test_fixtures_from_both_builds_are_present() -> None:
    assert {p.name for p in BUILDS} >= {"codex-0.163.0.jsonl", "codex-0.171.0.jsonl"}


@pytest.mark.parametrize("path", BUILDS, ids=[p.stem for p in BUILDS])
def test_every_recorded_line_matches_its_known_rule(path: Path) -> None:
    records = _records(path)
    assert len(records) > 20
    for record in records:
        line = _classified(record)
        expected = [(rule, kind) for text, rule, kind in EXPECTED if text in _raw(record)]
        assert expected, f"no expectation for a recorded line: {_raw(record)[:200]}"
        assert (line.rule, line.kind) == expected[0], _raw(record)[:200]
        assert line.reason


@pytest.mark.parametrize("path", BUILDS, ids=[p.stem for p in BUILDS])
def test_every_scenario_left_its_known_lines(path: Path) -> None:
    rules = {_classified(r).rule for r in _records(path)}
    assert rules == {rule for _, rule, _ in EXPECTED}


@pytest.mark.parametrize("path", BUILDS, ids=[p.stem for p in BUILDS])
def test_a_session_log_shows_no_error_when_nothing_went_wrong(path: Path) -> None:
    text = format_log(_classified(r) for r in _records(path))
    assert "ERROR  " not in text
    assert "Known harmless" in text


def test_colours_are_stripped() -> None:
    raw = (
        "\x1b[2m2026-12-01T12:34:37.295885Z\x1b[0m \x1b[31mERROR\x1b[0m \x1b[2mcodex_core\x1b[0m"
        "\x1b[2m:\x1b[0m something broke"
    )
    line = classify(raw)
    assert line.text == "2026-12-01T12:34:37.295885Z ERROR codex_core: something broke"
    assert (line.kind, line.rule, line.reason) == ("error", None, None)


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("2026-12-01T12:00:00Z ERROR codex_core::codex: turn failed: stream closed", "error"),
        ("2026-12-01T12:00:00Z  WARN codex_core::exec: slow filesystem", "warning"),
        ("2026-12-01T12:00:00Z  INFO codex_app_server: listening", "info"),
        ("thread 'main' panicked at core/src/lib.rs:10:5", "error"),
        ("WARNING: something new", "warning"),
        ("plain words", "info"),
    ],
)
def test_unknown_lines_keep_their_own_severity(raw: str, kind: str) -> None:
    line = classify(raw)
    assert (line.kind, line.rule) == (kind, None)


@pytest.mark.parametrize(
    ("entry", "kind", "rule"),
    [
        ("warning: Model metadata for `gpt-x` not found. Defaulting", "harmless", "model-metadata"),
        ("configWarning: your config has an unknown key", "warning", None),
        ("deprecationNotice: `foo` is deprecated", "info", None),
        ("error: {'error': {'message': 'boom'}, 'willRetry': False}", "error", None),
        ("error: {'error': {'message': 'blip'}, 'willRetry': True}", "warning", None),
    ],
)
def test_session_notification_entries_are_classified(entry: str, kind: str, rule: str) -> None:
    line = classify(entry)
    assert (line.kind, line.rule, line.source) == (kind, rule, "notification")


def test_error_notification_without_retry_is_an_error() -> None:
    params = {"error": {"message": "unexpected status 401 Unauthorized"}, "willRetry": False}
    line = classify_notification("error", params)
    assert line.kind == "error"
    assert line.text == "error: unexpected status 401 Unauthorized"


def test_format_log_puts_the_real_error_first_and_folds_the_noise() -> None:
    noise = "WARNING: proceeding, even though we could not create PATH aliases: x"
    entries: list[LogLine | str] = [
        noise,
        "warning: Model metadata for `mock-model` not found.",
        "warning: Model metadata for `mock-model` not found.",
        "2026-12-01T12:00:00Z ERROR codex_core::codex: stream closed before completion",
        "deprecationNotice: something else is deprecated",
    ]
    text = format_log(entries)
    lines = text.splitlines()
    assert lines[0] == "codex log: 1 error(s), 1 other, 3 known harmless"
    assert lines[2].startswith("ERROR    2026-12-01T12:00:00Z ERROR codex_core::codex: stream")
    assert "  2× codex has no built-in profile for this model name" in text
    assert "  1× CODEX_HOME is under a temporary folder" in text
    assert text.index("ERROR    ") < text.index("deprecationNotice") < text.index("Known harmless")


def test_format_log_splits_multi_line_entries() -> None:
    text = format_log(
        ["app-server died; restarting. Last stderr:\nthread 'main' panicked at x.rs:1:1"]
    )
    assert "ERROR    thread 'main' panicked at x.rs:1:1" in text


def test_format_log_empty() -> None:
    assert format_log([]) == "(nothing logged yet)"


def test_parse_log_skips_blank_lines() -> None:
    assert [line.kind for line in parse_log("\n  \nERROR: x\n")] == ["error"]


def test_terminal_escapes_other_than_colours_are_stripped() -> None:
    # a hyperlink (OSC 8), a clipboard write (OSC 52), a title: live in a terminal
    raw = (
        "ERROR codex_core: \x1b]8;;https://evil.example\x07click\x1b]8;;\x07"
        "\x1b]52;c;ZXZpbA==\x07\x1b]0;title\x1b\\ rejected\x07\x08"
    )
    for line in (classify(raw), classify_notification("warning", {"message": raw})):
        assert "\x1b" not in line.text and "\x07" not in line.text and "\x08" not in line.text
        assert "click" in line.text
