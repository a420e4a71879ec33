"""Router throughput: ours vs the official ``openai-codex`` SDK on the same stream.

A scripted fake app-server floods 8 concurrent turns with one-character
agent-message deltas (pre-built bytes, written as fast as the pipe allows).
Each client starts the 8 turns and consumes every turn's stream in its own
consumer (a thread for the sync clients, a task for ours on asyncio).  We
report notifications consumed per second, median of several runs, and the
ratio to the official SDK.  Target: >= 3x.

    python bench/router_throughput.py [--turns 8] [--deltas 25000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from typing import Any

from _common import best_of, fake_bin, machine

from codex_notebook import AsyncCodex, Codex


def _ours_sync(binary: str, turns: int, deltas: int) -> float:
    with Codex(codex_bin=binary) as codex:
        threads = [codex.thread_start() for _ in range(turns)]
        counts = [0] * turns
        started = time.perf_counter()
        handles = [t.turn(f"FLOOD:{deltas}") for t in threads]

        def consume(i: int) -> None:
            counts[i] = sum(1 for _ in handles[i].stream(timeout=60))

        workers = [threading.Thread(target=consume, args=(i,)) for i in range(turns)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        elapsed = time.perf_counter() - started
        assert all(h.run(1).text == "x" * deltas for h in handles), "wrong text"
    return sum(counts) / elapsed


def _ours_async(binary: str, turns: int, deltas: int) -> float:
    async def main() -> float:
        async with AsyncCodex(codex_bin=binary) as codex:
            threads = await asyncio.gather(*(codex.thread_start() for _ in range(turns)))
            started = time.perf_counter()
            handles = await asyncio.gather(*(t.turn(f"FLOOD:{deltas}") for t in threads))

            async def consume(handle: Any) -> int:
                return sum([1 async for _ in handle.stream()])

            counts = await asyncio.gather(*(consume(h) for h in handles))
            elapsed = time.perf_counter() - started
            results = await asyncio.gather(*(h.run() for h in handles))
            assert all(r.text == "x" * deltas for r in results), "wrong text"
            return sum(counts) / elapsed

    return asyncio.run(main())


def _official_sync(binary: str, turns: int, deltas: int) -> float:
    from openai_codex import Codex as OfficialCodex
    from openai_codex import CodexConfig

    with OfficialCodex(CodexConfig(codex_bin=binary)) as codex:
        threads = [codex.thread_start() for _ in range(turns)]
        counts = [0] * turns
        started = time.perf_counter()
        handles = [t.turn(f"FLOOD:{deltas}") for t in threads]

        def consume(i: int) -> None:
            counts[i] = sum(1 for _ in handles[i].stream())

        workers = [threading.Thread(target=consume, args=(i,)) for i in range(turns)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        elapsed = time.perf_counter() - started
    return sum(counts) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--deltas", type=int, default=25_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    binary = fake_bin()
    total = args.turns * args.deltas
    print(
        f"router throughput: {args.turns} turns x {args.deltas} deltas = {total:,} "
        f"notifications per run, {args.runs} runs, {machine()}"
    )
    rates: dict[str, float] = {}
    for name, fn in [
        ("official openai-codex 0.163.0 (sync)", _official_sync),
        ("codex-notebook Codex (sync)", _ours_sync),
        ("codex-notebook AsyncCodex", _ours_async),
    ]:
        median, values = best_of(args.runs, lambda fn=fn: fn(binary, args.turns, args.deltas))
        rates[name] = median
        shown = ", ".join(f"{v:,.0f}" for v in values)
        print(f"  {name:40s} {median:>12,.0f} notifications/s  (runs: {shown})")
    base = rates["official openai-codex 0.163.0 (sync)"]
    for name, rate in rates.items():
        if not name.startswith("official"):
            print(f"  ratio {name} / official: {rate / base:.2f}x  (target >= 3x)")


if __name__ == "__main__":
    main()
