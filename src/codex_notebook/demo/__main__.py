"""``python -m codex_notebook.demo``: run the demo model server until stdin closes."""

from codex_notebook.demo.server import main

main()
