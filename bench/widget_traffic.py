"""Widget traffic for one long answer: messages per second and bytes sent.

A real ipykernel with the demo backend streams a 20,000-delta answer into one
%%codex widget.  From iopub we count the widget's comm messages, their payload
bytes (JSON of the message data), the rate while streaming, and check the
final text is exact.  Targets: <= 20 messages/s, bytes <= 3x the final text.

    python bench/widget_traffic.py [--deltas 20000]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deltas", type=int, default=20_000)
    args = parser.parse_args()
    env = dict(os.environ, CODEX_NOTEBOOK_BACKEND="demo")
    env.pop("OPENAI_API_KEY", None)
    harness = KernelHarness(Path(tempfile.mkdtemp(prefix="codex-bench-widget-")), env)
    try:
        harness.execute("%load_ext codex_notebook")
        cell, _ = harness.execute(f"%%codex -o turn\nDELTAS:{args.deltas}")
        widget = harness.widget_id(cell)
        final = harness.final_output(cell, timeout=300)
        probe, _ = harness.execute("print(len(turn.text)); print(turn.result().text == turn.text)")
        expected = "".join(deltas_text(args.deltas))
        msgs = [
            m
            for m in harness.messages
            if m["msg_type"] in ("comm_open", "comm_msg") and m["content"]["comm_id"] == widget
        ]
        payload = sum(len(json.dumps(m["content"]["data"])) for m in msgs)
        stamps = [m["header"]["date"] for m in msgs]
        span = (stamps[-1] - stamps[0]).total_seconds() if len(stamps) > 1 else 0.0
        markdown = final["content"]["data"]["text/markdown"]
        exact = expected in markdown and harness.text(probe).split() == [str(len(expected)), "True"]
        print(
            f"widget traffic: one answer of {args.deltas:,} deltas "
            f"({len(expected.encode()):,} bytes of text), {machine()}"
        )
        print(
            f"  comm messages: {len(msgs)} over {span:.2f} s streaming "
            f"= {len(msgs) / span if span else float('nan'):.1f} msg/s (target <= 20)"
        )
        print(
            f"  bytes sent to the widget: {payload:,} = "
            f"{payload / len(expected.encode()):.2f}x the final text (target <= 3x)"
        )
        print(f"  final text exact: {exact}")
    finally:
        harness.close()


if __name__ == "__main__":
    main()
