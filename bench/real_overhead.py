"""Our client vs a bare read-and-parse loop, on the real codex binary and the demo model.

Both sides drive the same ``codex app-server`` setup (a fresh demo backend)
through one long turn of N agent-message deltas; we time from sending
``turn/start`` to seeing ``turn/completed``.  The bare loop is the floor: it
only reads lines and ``json.loads`` them.  Target: <= 10 % overhead.  Also
reports the router's per-turn state after 1,000 sequential turns (target: 0).

    python bench/real_overhead.py [--deltas 2000 20000] [--runs 5] [--turns 1000]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import time
from typing import Any

import psutil
from _common import machine

from codex_notebook import Codex
from codex_notebook.demo import DemoBackend
from codex_notebook.transport import resolve_codex_bin


def _bare(backend: DemoBackend, deltas: int) -> float:
    proc = subprocess.Popen(
        [resolve_codex_bin(), "app-server"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=backend.env(),
        cwd=backend.workspace,
        start_new_session=True,
    )
    assert proc.stdin is not None and proc.stdout is not None

    def send(message: dict[str, Any]) -> None:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(message).encode() + b"\n")
        proc.stdin.flush()

    def until(pred: Any) -> dict[str, Any]:
        assert proc.stdout is not None
        while True:
            message = json.loads(proc.stdout.readline())
            if pred(message):
                return message  # type: ignore[no-any-return]

    try:
        send(
            {
                "id": 1,
                "method": "initialize",
                "params": {"clientInfo": {"name": "bare", "version": "0"}},
            }
        )
        until(lambda m: m.get("id") == 1)
        send({"method": "initialized"})
        send({"id": 2, "method": "thread/start", "params": {}})
        thread_id = until(lambda m: m.get("id") == 2)["result"]["thread"]["id"]
        started = time.perf_counter()
        send(
            {
                "id": 3,
                "method": "turn/start",
                "params": {
                    "threadId": thread_id,
                    "input": [{"type": "text", "text": f"DELTAS:{deltas}"}],
                },
            }
        )
        until(lambda m: m.get("method") == "turn/completed")
        return time.perf_counter() - started
    finally:
        proc.stdin.close()
        proc.wait(10)


def _ours(backend: DemoBackend, deltas: int) -> float:
    with Codex(env=backend.env(), cwd=backend.workspace) as codex:
        thread = codex.thread_start()
        started = time.perf_counter()
        result = thread.turn(f"DELTAS:{deltas}").run(120)
        elapsed = time.perf_counter() - started
        assert result.text.count("chunk") == deltas, "wrong text"
    return elapsed


def _memory_after_turns(backend: DemoBackend, turns: int) -> None:
    process = psutil.Process()
    with Codex(env=backend.env(), cwd=backend.workspace) as codex:
        thread = codex.thread_start()
        thread.run("DELTAS:3", timeout=60)
        gc.collect()
        rss_before = process.memory_info().rss
        started = time.perf_counter()
        for _ in range(turns):
            thread.run("DELTAS:3", timeout=60)
        elapsed = time.perf_counter() - started
        gc.collect()
        rss_after = process.memory_info().rss
        router = codex.router
        print(f"  {turns} sequential turns in {elapsed:.1f} s ({turns / elapsed:.0f} turns/s)")
        print(
            f"  router per-turn state after: live={router.live_turns()} "
            f"unclaimed={len(router._unclaimed)} finished-index={len(router._finished)} "
            f"(target 0); global channel {len(router.channel)}/{router.channel.maxlen} "
            f"dropped={router.channel.dropped}"
        )
        print(
            f"  client RSS {rss_before / 2**20:.1f} MiB -> {rss_after / 2**20:.1f} MiB "
            f"({(rss_after - rss_before) / 2**10:+.0f} KiB)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deltas", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--turns", type=int, default=1000)
    args = parser.parse_args()
    print(f"real binary overhead: codex {resolve_codex_bin()}, {machine()}")
    with DemoBackend(server_process=True) as backend:
        for deltas in args.deltas:
            bare: list[float] = []
            ours: list[float] = []
            for _ in range(args.runs):  # alternate so drift hits both equally
                bare.append(_bare(backend, deltas))
                ours.append(_ours(backend, deltas))
            b, o = statistics.median(bare), statistics.median(ours)
            print(
                f"  {deltas:>6} deltas: bare loop {b * 1000:7.1f} ms, ours {o * 1000:7.1f} ms, "
                f"overhead {100 * (o / b - 1):+.1f} % (target <= 10 %)"
            )
        _memory_after_turns(backend, args.turns)


if __name__ == "__main__":
    main()
