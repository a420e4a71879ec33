"""Router throughput on real-shaped lines: ours vs the official SDK vs a bare parse loop.

A scripted fake app-server streams 8 concurrent turns of agent-message deltas shaped like
codex's (UUID thread and turn ids, an ``msg_...`` item id, 3-10 character deltas, an
``emittedAtMs`` stamp: ~215 bytes a line, as in ../shared/fixtures/transcripts/), pre-built
and written as fast as the pipe allows. Each client starts the 8 turns and consumes every
turn's stream in its own consumer (a thread for the sync clients, a task on asyncio). The
"bare loop" reads the same server's stdout with ``os.read``, splits lines and
``orjson.loads`` each one, and nothing else: the ceiling for any Python client.

We report notifications consumed per second (median of several runs, all runs interleaved
so machine noise hits every client alike) and the ratios. Targets: ours >= 3x the official
SDK with sync consumer threads and with asyncio tasks; ours >= 70% of the bare loop.

    python bench/router_throughput.py [--turns 8] [--deltas 25000] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
from _common import fake_bin, machine

from codex_notebook import AsyncCodex, Codex

DELTA = "item/agentMessage/delta"


def _ours_sync(binary: str, turns: int, deltas: int) -> tuple[float, float]:
    with Codex(codex_bin=binary) as codex:
        threads = [codex.thread_start() for _ in range(turns)]
        counts = [0] * turns
        texts = [""] * turns
        started, cpu = time.perf_counter(), time.process_time()
        handles = [t.turn(f"STREAM:{deltas}") for t in threads]

        def consume(i: int) -> None:
            pieces = []
            n = 0
            for event in handles[i].stream(timeout=60):
                n += 1
                if event.method == DELTA:
                    pieces.append(event.params_dict["delta"])
            counts[i], texts[i] = n, "".join(pieces)

        workers = [threading.Thread(target=consume, args=(i,)) for i in range(turns)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        assert all(h.run(1).text == texts[i] for i, h in enumerate(handles)), "wrong text"
    return sum(counts) / elapsed, cpu / sum(counts) * 1e6


def _ours_async(binary: str, turns: int, deltas: int) -> tuple[float, float]:
    async def main() -> tuple[float, float]:
        async with AsyncCodex(codex_bin=binary) as codex:
            threads = await asyncio.gather(*(codex.thread_start() for _ in range(turns)))
            started, cpu = time.perf_counter(), time.process_time()
            handles = await asyncio.gather(*(t.turn(f"STREAM:{deltas}") for t in threads))

            async def consume(handle: Any) -> tuple[int, str]:
                pieces = []
                n = 0
                async for event in handle.stream():
                    n += 1
                    if event.method == DELTA:
                        pieces.append(event.params_dict["delta"])
                return n, "".join(pieces)

            consumed = await asyncio.gather(*(consume(h) for h in handles))
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            results = await asyncio.gather(*(h.run() for h in handles))
            assert [r.text for r in results] == [t for _, t in consumed], "wrong text"
            count = sum(n for n, _ in consumed)
            return count / elapsed, cpu / count * 1e6

    return asyncio.run(main())


def _official_sync(binary: str, turns: int, deltas: int) -> tuple[float, float]:
    from openai_codex import Codex as OfficialCodex
    from openai_codex import CodexConfig

    with OfficialCodex(CodexConfig(codex_bin=binary)) as codex:
        threads = [codex.thread_start() for _ in range(turns)]
        counts = [0] * turns
        started, cpu = time.perf_counter(), time.process_time()
        handles = [t.turn(f"STREAM:{deltas}") for t in threads]

        def consume(i: int) -> None:
            counts[i] = sum(1 for _ in handles[i].stream())

        workers = [threading.Thread(target=consume, args=(i,)) for i in range(turns)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return sum(counts) / elapsed, cpu / sum(counts) * 1e6


def _bare_loop(binary: str, turns: int, deltas: int) -> tuple[float, float]:
    """Only read, split and parse: the same stream, no routing, no consumers."""
    proc = subprocess.Popen([binary, "app-server"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    fd = proc.stdout.fileno()
    pending = b""

    def send(message: dict[str, Any]) -> None:
        assert proc.stdin is not None
        proc.stdin.write(orjson.dumps(message) + b"\n")
        proc.stdin.flush()

    def until(done: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        nonlocal pending
        seen = []
        while True:
            data = os.read(fd, 1 << 16)
            lines = (pending + data).split(b"\n")
            pending = lines.pop()
            for line in lines:
                message = orjson.loads(line)
                seen.append(message)
                if done(message):
                    return seen

    try:
        send({"id": 0, "method": "initialize", "params": {"clientInfo": {"name": "bare"}}})
        until(lambda m: m.get("id") == 0)
        send({"method": "initialized"})
        ids = []
        for i in range(turns):
            send({"id": i + 1, "method": "thread/start", "params": {}})
            reply = until(lambda m, i=i: m.get("id") == i + 1)[-1]
            ids.append(reply["result"]["thread"]["id"])
        started, cpu = time.perf_counter(), time.process_time()
        for i, thread_id in enumerate(ids):
            text = [{"type": "text", "text": f"STREAM:{deltas}"}]
            send(
                {
                    "id": 100 + i,
                    "method": "turn/start",
                    "params": {"threadId": thread_id, "input": text},
                }
            )
        count = 0
        completed = 0
        while completed < turns:
            data = os.read(fd, 1 << 16)
            lines = (pending + data).split(b"\n")
            pending = lines.pop()
            for line in lines:
                message = orjson.loads(line)
                if "method" in message:
                    count += 1
                    if message["method"] == "turn/completed":
                        completed += 1
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        return count / elapsed, cpu / count * 1e6
    finally:
        proc.stdin.close()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--deltas", type=int, default=25_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", help="comma-separated subset: sdk,sync,async,bare")
    args = parser.parse_args()
    binary = fake_bin(FAKE_CODEX_UUID_IDS=1)
    total = args.turns * args.deltas
    print(
        f"router throughput, real-shaped lines: {args.turns} turns x {args.deltas} deltas = "
        f"{total:,} notifications per run, {args.runs} runs, {machine()}"
    )
    clients: dict[str, Callable[[str, int, int], tuple[float, float]]] = {
        "sdk": _official_sync,
        "sync": _ours_sync,
        "async": _ours_async,
        "bare": _bare_loop,
    }
    labels = {
        "sdk": "official openai-codex 0.163.0 (sync threads)",
        "sync": "codex-notebook Codex (sync threads)",
        "async": "codex-notebook AsyncCodex (asyncio tasks)",
        "bare": "bare read + split + orjson.loads loop",
    }
    chosen = args.only.split(",") if args.only else list(clients)
    values: dict[str, list[float]] = {name: [] for name in chosen}
    cpu: dict[str, list[float]] = {name: [] for name in chosen}
    for _ in range(args.runs):  # interleaved: noise hits every client alike
        for name in chosen:
            rate, cpu_us = clients[name](binary, args.turns, args.deltas)
            values[name].append(rate)
            cpu[name].append(cpu_us)
    for name in chosen:
        shown = ", ".join(f"{v:,.0f}" for v in values[name])
        print(
            f"  {labels[name]:46s} {statistics.median(values[name]):>10,.0f} notifications/s, "
            f"{statistics.median(cpu[name]):5.2f} us CPU each  (runs: {shown})"
        )
    # Ratios per round (the clients of one round ran back to back, under the same load),
    # then their median: steadier than a ratio of medians on a shared machine.  CPU time per
    # notification (all threads of the client process) is steadier still.
    for name in ("sync", "async"):
        for base, target in (("sdk", "3x"), ("bare", "70%")):
            if name not in values or base not in values:
                continue
            ratios = [ours / other for ours, other in zip(values[name], values[base], strict=True)]
            shown = ", ".join(f"{r:.2f}" for r in ratios)
            middle = statistics.median(ratios)
            cpu_ratio = statistics.median(cpu[base]) / statistics.median(cpu[name])
            if base == "sdk":
                value, cpu_value = f"{middle:.2f}x", f"{cpu_ratio:.2f}x"
            else:
                value, cpu_value = f"{middle:.0%}", f"{cpu_ratio:.0%}"
            print(
                f"  {name} / {base}: {value} wall (rounds: {shown}), {cpu_value} by CPU per "
                f"notification (target >= {target})"
            )


if __name__ == "__main__":
    main()
