"""Load: many concurrent turns through one client.

1. Fake server, 32 threads with one turn each, all streaming at once:
   throughput (FLOOD turns) and delivery latency (deltas paced 2 ms apart,
   latency = consumer clock - the server's ``emittedAtMs``), every turn's text
   checked.
2. The real codex binary and the demo model with 8 concurrent turns: the same
   figures.

    python bench/load.py [--threads 32] [--real 8]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from typing import Any

from _common import fake_bin, machine

from codex_notebook import Codex
from codex_notebook.demo import DemoBackend
from codex_notebook.demo.script import deltas_text


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _drive(
    codex: Codex, turns: int, prompt: str, expected: str
) -> tuple[float, int, list[float], int]:
    """Start ``turns`` turns at once, consume each in its own thread.

    Returns (seconds, notifications, latencies in ms, turns with the exact text).
    """
    threads = [codex.thread_start() for _ in range(turns)]
    lags: list[list[float]] = [[] for _ in range(turns)]
    counts = [0] * turns
    started = time.perf_counter()
    handles = [t.turn(prompt) for t in threads]

    def consume(i: int) -> None:
        for event in handles[i].stream(timeout=120):
            counts[i] += 1
            emitted = event.raw.get("emittedAtMs")
            if isinstance(emitted, int) and event.method == "item/agentMessage/delta":
                lags[i].append(time.time() * 1000 - emitted)

    workers = [threading.Thread(target=consume, args=(i,)) for i in range(turns)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    correct = sum(1 for h in handles if h.run(1).text == expected)
    return elapsed, sum(counts), [x for lag in lags for x in lag], correct


def _report(label: str, turns: int, result: tuple[float, int, list[float], int]) -> None:
    elapsed, count, lags, correct = result
    line = f"  {label}: {count:,} notifications in {elapsed:.2f} s = {count / elapsed:,.0f}/s"
    if lags:
        p50, p99 = statistics.median(lags), _p(lags, 0.99)
        line += f"; delivery latency p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    print(line + f"; exact text {correct}/{turns}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--real", type=int, default=8)
    args = parser.parse_args()
    print(f"load: {machine()}")
    with Codex(codex_bin=fake_bin()) as codex:
        n = args.threads
        elapsed, count, _, correct = _drive(codex, n, "FLOOD:10000", "x" * 10000)
        # FLOOD writes pre-built lines, so their timestamps say nothing about latency
        _report(f"fake, {n} turns x 10,000 flood deltas", n, (elapsed, count, [], correct))
        paced = "".join(f"d{i} " for i in range(500))
        _report(
            f"fake, {n} turns x 500 deltas 2 ms apart",
            n,
            _drive(codex, n, "DELTAS:500 DELAY_MS:2", paced),
        )
    with (
        DemoBackend(server_process=True) as demo,
        Codex(env=demo.env(), cwd=demo.workspace) as codex,
    ):
        n = args.real
        expected = "".join(deltas_text(5000))
        _report(
            f"real codex, {n} turns x 5,000 deltas", n, _drive(codex, n, "DELTAS:5000", expected)
        )
        summary: dict[str, Any] = codex.router.channel.__dict__
        print(
            f"  global channel after: {len(codex.router.channel)}/{summary['maxlen']} "
            f"(dropped {summary['dropped']})"
        )


if __name__ == "__main__":
    main()
