"""The kernel side of the agent's ``notebook`` tools (DESIGN.md, "The agent sees the notebook").

Each module does one job and is either pure or takes the IPython shell explicitly:

- :mod:`.answer` — the capped answer every tool returns (text plus at most a small image).
- :mod:`.secrets` — credential-looking names and key-looking strings never reach the model.
- :mod:`.budget` — a time budget for work that calls user code on the kernel's main thread.
- :mod:`.namespace` — the user's variables: a snapshot, the hidden names, dotted lookups.
- :mod:`.describe` — what a value looks like (the ``variables`` rows and ``inspect`` answers).
- :mod:`.figures` — a matplotlib figure as a small PNG, only when that is cheap.
- :mod:`.tracebacks` — an exception as plain text (no ANSI colours).
- :mod:`.kernel_state` — recent cells and the last error (``cells``, ``last_error``).
- :mod:`.execute` — running the agent's code in the user namespace (``run_python``).
- :mod:`.calls` — one entry point per tool (arguments coerced, the namespace's secrets known).

Anything here that calls user code (``repr``, ``len``, pandas ``.head()``) must run on the kernel's
main thread: route it through :mod:`codex_notebook.notebook.mainthread`.  Nothing here imports
pandas, numpy, polars or matplotlib: they are recognised through ``sys.modules``, so a kernel
without them pays nothing.
"""
