"""Plain-text helpers, and the one duration format shared with the widget's JavaScript."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import codex_notebook.notebook as notebook_package
from codex_notebook.notebook.text import (
    TextStream,
    cap_text,
    format_duration,
    format_tokens,
    reveal_invisible,
    strip_ansi,
    u16len,
)

WIDGET_JS = Path(notebook_package.__file__).parent / "static" / "turn_widget.js"
DURATIONS = [0, 1, 999, 1000, 1299, 2300, 9999, 10_000, 59_999, 60_000, 65_400, 3_599_999,
             3_600_000, 7_260_000]  # fmt: skip


def test_ansi_colour_and_cursor_codes_are_stripped() -> None:
    assert strip_ansi("\x1b[31mred\x1b[0m \x1b[2K\x1b]0;title\x07ok\r\n") == "red ok\n"


def test_eight_bit_control_sequences_are_stripped() -> None:
    # U+009B is CSI and U+009D OSC by themselves for a terminal that reads 8-bit controls
    assert strip_ansi("a\x9b2Jb\x9d52;c;eA==\x9cc\x85") == "a2Jb52;c;eA==c"


def test_offsets_count_utf16_units_like_javascript() -> None:
    assert u16len("a😀é") == 4
    stream = TextStream()
    stream.append("😀")
    stream.append("x")
    assert stream.take_pending() == (0, "😀x")
    stream.append("y")
    assert stream.take_pending() == (3, "y")


def test_stream_remembers_only_what_was_appended_since_the_flush() -> None:
    stream = TextStream()
    stream.append("hello ")
    stream.mark_flushed()
    stream.append("world")
    assert stream.take_pending() == (6, "world")
    assert stream.take_pending() is None


def test_capping_keeps_the_tail_and_counts_the_hidden_lines() -> None:
    text = "".join(f"line {i}\n" for i in range(1000))
    shown, hidden = cap_text(text)
    assert shown.endswith("line 999\n") and shown.count("\n") == 400
    assert hidden == 600


@pytest.mark.parametrize(
    ("ms", "text"),
    [(850, "850 ms"), (1300, "1.3 s"), (2300, "2.3 s"), (12_900, "12 s"), (125_000, "2 min 05 s"),
     (3_720_000, "1 h 02 min"), (None, "")],
)  # fmt: skip
def test_durations_have_one_format(ms: int | None, text: str) -> None:
    assert format_duration(ms) == text


def test_token_counts_are_short() -> None:
    assert [format_tokens(n) for n in (0, 812, 12_345, 999_999, 1_234_567)] == [
        "",
        "812 tokens",
        "12k tokens",
        "999k tokens",
        "1.2M tokens",
    ]
    assert format_tokens(1_234) == "1.2k tokens"


def test_the_widget_formats_durations_exactly_as_python_does() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: cannot run the widget's JavaScript")
    script = (
        f"import({json.dumps(WIDGET_JS.as_uri())}).then(m => "
        f"console.log(JSON.stringify({json.dumps(DURATIONS)}.map(m.fmtDuration))))"
    )
    out = subprocess.run(
        [node, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [format_duration(ms) for ms in DURATIONS]


def test_invisible_and_direction_characters_are_revealed_and_nothing_else() -> None:
    assert reveal_invisible("a\u202eb\u2066c\u200bd\ufeff\U000e0041") == (
        "a⟨U+202E⟩b⟨U+2066⟩c⟨U+200B⟩d⟨U+FEFF⟩⟨U+E0041⟩"
    )
    for text in ("plain", "é ü 漢字 🙂", "שלום עולם", "مرحبا"):
        assert reveal_invisible(text) == text
