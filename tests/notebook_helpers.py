"""Driving a NotebookSession from tests: submit turns, wait for states, record widget traffic."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from codex_notebook.notebook.session import NotebookSession, NotebookTurn
from tests.waiting import eventually


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Until ``predicate()`` holds (checked every 10 ms), or fail after ``timeout``."""
    if not eventually(predicate, timeout):
        raise AssertionError(f"condition not met within {timeout} s")


class WidgetRecorder:
    """A ``show`` callback for ``session.submit`` that records everything the turn's
    widget sends to the browser (trait updates and custom messages)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def __call__(self, turn: NotebookTurn) -> None:
        widget = turn.widget
        widget._send = lambda msg, buffers=None: self.messages.append(msg)
        self.messages.append({"method": "update", "state": dict(widget.get_state())})

    def blocks(self) -> Iterator[dict[str, Any]]:
        """Every block dict sent, in any message."""
        for message in self.messages:
            if message["method"] == "update":
                yield from message["state"].get("blocks", [])
            else:
                content = message.get("content", {})
                if content.get("type") == "upsert":
                    yield content["block"]
                elif content.get("type") == "snapshot":
                    yield from content["blocks"]

    def html(self) -> list[str]:
        """Every fragment of HTML the view would insert with innerHTML."""
        fragments: list[str] = []
        for block in self.blocks():
            fragments += block.get("html_segments", [])
            fragments += [
                block.get(k, "") for k in ("reason_html", "code_html", "explanation_html")
            ]
        for message in self.messages:
            content = message.get("content", {})
            if content.get("type") == "commit":
                fragments += content["html"]
        return fragments

    def headers(self) -> list[dict[str, Any]]:
        return [m["state"]["header"] for m in self.messages if "header" in m.get("state", {})]


def submit(
    session: NotebookSession,
    prompt: str,
    *,
    show: Callable[[NotebookTurn], Any] | None = None,
    **options: Any,
) -> NotebookTurn:
    return session.submit(prompt, session.with_defaults(**options), show=show)
