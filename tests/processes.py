"""Looking at other processes from a test, which may end while we look."""

from __future__ import annotations

from collections.abc import Iterable

import psutil


def cmdline(proc: psutil.Process) -> list[str]:
    """A process's arguments, or none once it has ended (it can end between listing and reading)."""
    try:
        return proc.cmdline()
    except psutil.Error:
        return []


def app_servers(procs: Iterable[psutil.Process]) -> list[psutil.Process]:
    """The ``<codex> app-server`` processes among ``procs`` (``CODEX_BIN`` may be a wrapper)."""
    return [proc for proc in procs if "app-server" in cmdline(proc)]


def alive(procs: Iterable[psutil.Process]) -> list[psutil.Process]:
    """The processes among ``procs`` still running (a zombie is not)."""
    left = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                left.append(proc)
        except psutil.Error:
            pass
    return left
