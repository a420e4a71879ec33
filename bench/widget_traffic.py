"""Widget traffic for one long answer: messages per second and bytes sent.

A real ipykernel with the demo backend streams answers into %%codex widgets:
a 20,000-delta plain answer (one long paragraph), and a ~100 KB markdown answer
(headings, paragraphs, lists, code blocks, tables) whose finished blocks are
sent as rendered HTML while it streams.  From iopub we count each widget's comm
messages, their payload bytes (JSON of the message data) and the rate while
streaming, and check the final text is exact.  Targets: <= 20 messages/s,
bytes <= 3x the final text.

    python bench/widget_traffic.py [--deltas 20000] [--markdown-kb 100]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from _common import machine

from codex_notebook.demo.script import deltas_text
from tests.kernel.conftest import KernelHarness

_SECTION = """## Section {i}

A paragraph with *emphasis*, `inline code` and a [link](https://example.com/{i}) that
goes on for a while so that the paragraph is a realistic size for an answer.

- first point of section {i}
- second point, with **bold** text
- third point

```python
def step_{i}(x: int) -> int:
    return x * {i}
```

| column | value |
|--------|-------|
| a      | {i}   |
| b      | {j}   |

"""


def markdown_answer(kb: int) -> str:
    parts, size, i = [], 0, 0
    while size < kb * 1024:
        part = _SECTION.format(i=i, j=i * 2)
        parts.append(part)
        size += len(part)
        i += 1
    return "".join(parts)


def measure(harness: KernelHarness, cell_source: str, expected: str) -> None:
    cell, _ = harness.execute(f"%%codex -o turn\n{cell_source}")
    widget = harness.widget_id(cell)
    final = harness.final_output(cell, timeout=300)
    probe, _ = harness.execute("print(turn.result().text == turn.text); print(len(turn.text))")
    msgs = [
        m
        for m in harness.messages
        if m["msg_type"] in ("comm_open", "comm_msg") and m["content"]["comm_id"] == widget
    ]
    payload = sum(len(json.dumps(m["content"]["data"])) for m in msgs)
    stamps = [m["header"]["date"] for m in msgs]
    span = (stamps[-1] - stamps[0]).total_seconds() if len(stamps) > 1 else 0.0
    commits = sum(
        1 for m in msgs if m["content"]["data"].get("content", {}).get("type") == "commit"
    )
    shown = harness.text(probe).split()
    exact = shown[0] == "True" and int(shown[1]) == len(expected.strip())
    size = len(expected.encode())
    print(
        f"  comm messages: {len(msgs)} ({commits} of them rendered markdown) over {span:.2f} s "
        f"streaming = {len(msgs) / span if span else float('nan'):.1f} msg/s (target <= 20)"
    )
    print(
        f"  bytes sent to the widget: {payload:,} = {payload / size:.2f}x the text (target <= 3x)"
    )
    print(f"  final text exact: {exact}")
    del final


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deltas", type=int, default=20_000)
    parser.add_argument("--markdown-kb", type=int, default=100)
    args = parser.parse_args()
    env = dict(os.environ, CODEX_NOTEBOOK_BACKEND="demo")
    env.pop("OPENAI_API_KEY", None)
    harness = KernelHarness(Path(tempfile.mkdtemp(prefix="codex-bench-widget-")), env)
    try:
        harness.execute("%load_ext codex_notebook")
        plain = "".join(deltas_text(args.deltas))
        print(
            f"widget traffic: one answer of {args.deltas:,} deltas "
            f"({len(plain.encode()):,} bytes of text, one paragraph), {machine()}"
        )
        measure(harness, f"DELTAS:{args.deltas}", plain)
        markdown = markdown_answer(args.markdown_kb)
        print(
            f"widget traffic: a markdown answer of {len(markdown.encode()):,} bytes "
            "(headings, lists, code, tables), one delta per word"
        )
        measure(harness, "ECHO " + markdown, "ECHO " + markdown)  # the demo echoes the prompt
    finally:
        harness.close()


if __name__ == "__main__":
    main()
