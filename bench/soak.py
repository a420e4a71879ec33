"""Soak: thousands of sequential turns in one client; memory must stay flat.

Reports RSS and the number of live per-turn objects (TurnLog, TurnHandle,
Notification) before and after, and the global channel's fill/drop counters.

    python bench/soak.py [--turns 2000] [--real 300]
"""

from __future__ import annotations

import argparse
import gc
import time

import psutil
from _common import fake_bin, machine

from codex_notebook import Codex, Notification, TurnHandle
from codex_notebook.demo import DemoBackend
from codex_notebook.router import TurnLog

#: Turns run before the "before" figures: the global channel (1,000 items) is full by then.
WARMUP = 300


def _live() -> dict[str, int]:
    gc.collect()
    kinds = {"TurnLog": TurnLog, "TurnHandle": TurnHandle, "Notification": Notification}
    counts = dict.fromkeys(kinds, 0)
    for obj in gc.get_objects():
        for name, kind in kinds.items():
            if type(obj) is kind:
                counts[name] += 1
    return counts


def soak(label: str, codex: Codex, turns: int, prompt: str) -> None:
    thread = codex.thread_start()
    for _ in range(WARMUP):  # fills the bounded global channel and the allocator's pools
        thread.run(prompt, timeout=60)
    process = psutil.Process()
    rss0, live0 = process.memory_info().rss, _live()
    started = time.perf_counter()
    for _ in range(turns):
        assert thread.run(prompt, timeout=60).status == "completed"
    elapsed = time.perf_counter() - started
    rss1, live1 = process.memory_info().rss, _live()
    router = codex.router
    print(f"  {label}: {turns} turns in {elapsed:.1f} s ({turns / elapsed:.0f}/s)")
    print(
        f"    RSS {rss0 / 2**20:.1f} -> {rss1 / 2**20:.1f} MiB ({(rss1 - rss0) / 2**10:+.0f} KiB)"
    )
    print(f"    live objects before {live0} after {live1}")
    print(
        f"    router: live turns {router.live_turns()}, unclaimed {len(router._unclaimed)}; "
        f"global channel {len(router.channel)}/{router.channel.maxlen} "
        f"(dropped {router.channel.dropped})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument("--real", type=int, default=300)
    args = parser.parse_args()
    print(f"soak: {machine()}")
    with Codex(codex_bin=fake_bin()) as codex:
        soak("fake server", codex, args.turns, "DELTAS:20")
    if args.real:
        with (
            DemoBackend(server_process=True) as demo,
            Codex(env=demo.env(), cwd=demo.workspace) as codex,
        ):
            soak("real codex + demo model", codex, args.real, "DELTAS:20")


if __name__ == "__main__":
    main()
