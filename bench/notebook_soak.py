"""Notebook-layer soak: hundreds of %%codex turns in one real kernel; memory must stay flat.

A real ipykernel (jupyter_client) with the demo backend runs turns of 2,000 deltas each, four
thread names at a time, each batch ended by ``%codex wait all``.  At 0, 100, 200, 300, 500 it
reports the kernel's RSS and the live objects a finished turn must let go of: turn widgets
(and open comms), transcripts, turn logs, notifications, NotebookTurns (the history keeps at
most 200, with their results and static renderings).  Target: flat once the history is full.

    python bench/notebook_soak.py [--turns 500] [--deltas 2000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _common import machine

from tests.kernel.conftest import KernelHarness
from tests.kernel.memory import counts, run_turns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=500)
    parser.add_argument("--deltas", type=int, default=2000)
    args = parser.parse_args()
    env = dict(os.environ, CODEX_NOTEBOOK_BACKEND="demo")
    env.pop("OPENAI_API_KEY", None)
    harness = KernelHarness(Path(tempfile.mkdtemp(prefix="codex-bench-soak-")), env)
    print(
        f"notebook soak: {args.turns} turns of {args.deltas:,} deltas in one kernel, "
        f"4 thread names, {machine()}"
    )
    checkpoints = sorted({0, *(n for n in (100, 200, 300) if n < args.turns), args.turns})
    try:
        harness.execute("%load_ext codex_notebook")
        run_turns(harness, 4, deltas=args.deltas)  # warm-up: server, model, caches
        done = 0
        started = time.perf_counter()
        for checkpoint in checkpoints:
            run_turns(harness, checkpoint - done, deltas=args.deltas)
            done = checkpoint
            live = counts(harness)
            rate = done / (time.perf_counter() - started) if done else 0.0
            print(
                f"  after {done:>4} turns: kernel RSS {live['rss_kib'] / 1024:7.1f} MiB · "
                f"widgets {live['widgets']} (open comms {live['open_comms']}) · "
                f"transcripts {live['transcripts']} · turn logs {live['turn_logs']} · "
                f"notifications {live['notifications']} · NotebookTurns {live['turns']} "
                f"({live['history_kib']:,} KiB of results and renderings)"
                + (f" · {rate:.1f} turns/s" if done else "")
            )
    finally:
        harness.close()


if __name__ == "__main__":
    main()
