"""Kernel responsiveness while %%codex turns stream at full speed.

A real ipykernel (jupyter_client) with the demo backend.  We start 0, 4 or 8
turns that stream long answers as fast as the demo model can produce them,
then time trivial cells (send execute_request -> receive execute_reply; the
next sample starts once the kernel reported idle).
Target: p95 under 50 ms with 8 turns streaming.

    python bench/kernel_responsiveness.py [--samples 60] [--deltas 40000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from _common import machine

from tests.kernel.conftest import KernelHarness


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(turns: int, samples: int, deltas: int) -> tuple[list[float], list[float], bool]:
    env = dict(os.environ, CODEX_NOTEBOOK_BACKEND="demo")
    env.pop("OPENAI_API_KEY", None)
    harness = KernelHarness(Path(tempfile.mkdtemp(prefix="codex-bench-kernel-")), env)
    try:
        harness.execute("%load_ext codex_notebook")
        warm, _ = harness.execute("%%codex -t warmup\nDELTAS:3")
        harness.final_output(warm)
        cells = [harness.execute(f"%%codex -t t{i}\nDELTAS:{deltas}")[0] for i in range(turns)]
        latencies, in_kernel = [], []
        for _ in range(samples):  # execute_request sent -> execute_reply received
            started = time.perf_counter()
            msg_id = harness.kc.execute("pass")
            reply = harness.kc.get_shell_msg(timeout=30)
            latencies.append((time.perf_counter() - started) * 1000)
            assert reply["parent_header"]["msg_id"] == msg_id
            # request stamped by the client, reply by the kernel: same machine clock
            kernel_side = reply["header"]["date"] - reply["parent_header"]["date"]
            in_kernel.append(kernel_side.total_seconds() * 1000)
            harness.wait_for(lambda m=msg_id: harness._idle(m), what="idle")
        still_streaming = all(not _finished(harness, c) for c in cells) if cells else True
        for cell in cells:
            harness.final_output(cell, timeout=300)
        return latencies, in_kernel, still_streaming
    finally:
        harness.close()


def _finished(harness: KernelHarness, cell: str) -> bool:
    try:
        harness.final_output(cell, timeout=0.01)
        return True
    except AssertionError:
        return False


def shutdown_ms(turns: int) -> tuple[float, int | None]:
    """Milliseconds from a shutdown request to the kernel's exit while ``turns`` stream, and
    the kernel's exit code (0: it ended on its own; negative: a signal had to end it)."""
    env = dict(os.environ, CODEX_NOTEBOOK_BACKEND="demo")
    env.pop("OPENAI_API_KEY", None)
    harness = KernelHarness(Path(tempfile.mkdtemp(prefix="codex-bench-shutdown-")), env)
    try:
        harness.execute("%load_ext codex_notebook")
        for i in range(turns):
            harness.execute(f"%%codex -t s{i}\nDELTAS:20000 DELAY_MS:20")
        time.sleep(1.0)  # let them stream
        process = harness.km.provisioner.process  # type: ignore[union-attr]
        started = time.perf_counter()
        harness.km.shutdown_kernel(now=False)
        return (time.perf_counter() - started) * 1000, process.returncode
    finally:
        harness.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--deltas", type=int, default=40_000)
    args = parser.parse_args()
    print(
        f"kernel responsiveness: trivial cell round trip, {args.samples} samples, "
        f"turns of {args.deltas} deltas, {machine()}"
    )
    for turns in (0, 4, 8):
        latencies, in_kernel, streaming = run(turns, args.samples, args.deltas)
        note = "" if streaming else "  (some turns finished before sampling ended)"
        print(
            f"  {turns} turns streaming: round trip p50 {statistics.median(latencies):5.1f} ms, "
            f"p95 {percentile(latencies, 0.95):5.1f} ms, max {max(latencies):6.1f} ms; "
            f"in the kernel p50 {statistics.median(in_kernel):5.1f} ms, "
            f"p95 {percentile(in_kernel, 0.95):5.1f} ms{note}  (target p95 < 50 ms with 8)"
        )
    runs = [shutdown_ms(3) for _ in range(3)]
    print(
        "  kernel shutdown while 3 turns stream: "
        f"median {statistics.median(ms for ms, _ in runs):.0f} ms "
        f"(runs: {', '.join(f'{ms:.0f}' for ms, _ in runs)} ms; "
        f"exit codes {[code for _, code in runs]}, 0 = ended on its own)"
    )


if __name__ == "__main__":
    main()
