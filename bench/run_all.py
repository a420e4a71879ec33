"""Run every benchmark in turn (``make bench``); paste the output into bench/RESULTS.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
SCRIPTS = [
    "router_throughput.py",
    "real_overhead.py",
    "tool_roundtrip.py",
    "widget_traffic.py",
    "kernel_responsiveness.py",
    "load.py",
    "soak.py",
    "remote_transport.py",
]


def main() -> int:
    failed = 0
    for script in SCRIPTS:
        print(f"\n$ python bench/{script}", flush=True)
        failed |= subprocess.call([sys.executable, str(HERE / script)], cwd=HERE) != 0
    return int(failed)


if __name__ == "__main__":
    sys.exit(main())
