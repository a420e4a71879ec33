"""Checks that HTML shown to a person cannot run code."""

from __future__ import annotations

from html.parser import HTMLParser


class _Elements(HTMLParser):
    """Every element and attribute a browser would create from some HTML."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [(name, value or "") for name, value in attrs]


def assert_inert(html: str, *, our_styles: bool = False) -> None:
    """No element, handler or URL in ``html`` can run code (our own inline styles allowed)."""
    found = _Elements(html)
    assert not {"script", "img", "iframe", "style", "object", "embed"} & set(found.tags)
    assert not [
        n for n, _ in found.attrs if n.startswith("on") or (n == "style" and not our_styles)
    ]
    assert not [v for n, v in found.attrs if n in ("href", "src") and "javascript:" in v.lower()]
