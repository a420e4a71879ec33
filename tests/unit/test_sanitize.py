"""Untrusted text to markup: HTML stays text, nothing runs, cost stays linear (adversarial)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from codex_notebook.notebook import sanitize
from codex_notebook.notebook.sanitize import (
    MAX_INLINE_CHARS,
    inline_markdown_html,
    markdown_html,
    md_code,
    md_fence,
    md_text,
    safe_markdown,
    split_finished_blocks,
)
from tests.html_checks import assert_inert

_GUARDED = sanitize._MD  # our own parser: linear on hostile input
#: A renderer that allows HTML in markdown: what safe_markdown must survive.
_PERMISSIVE = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])

ATTACKS = [
    "<img src=x onerror=alert(1)>",
    "<script>window.__pwned=1</script>",
    "<a href='javascript:alert(2)'>y</a>",
    '<p onclick="alert(1)" style="color:red">x</p><iframe src="x"></iframe>',
    "[x](javascript:alert(1))",
    "![i](javascript:alert(1))",
    "<svg><script>alert(1)</script></svg>",
    "- item\n  ```\n  <img src=x onerror=alert(1)>\n  ```\n- <img src=x onerror=alert(1)>",
    "1. a\n   > <img src=x onerror=alert(1)>",
    r"\`<img src=x onerror=alert(1)>\`",
    "``` <img src=x onerror=alert(1)>\n```",
    "| a |\n|---|\n| <img src=x onerror=alert(1)> |",
    "<!-- --><img src=x onerror=alert(1)>",
    "&lt;img src=x onerror=alert(1)&gt;",
    "<https://ok.example/x> <javascript:alert(1)>",
    "<div\nonmouseover=alert(1)>text</div>",
    "!![leak](https://evil.example/p.png)",
    "Wow!![leak](https://evil.example/p.png) and ![a]![b](https://evil.example/p.png)",
    "Title\\\nmore\n-----",  # a hard break in a heading: mdformat writes it as <br />
]


def _html_tokens(markdown: str) -> list[str]:
    tokens = _PERMISSIVE.parse(markdown)
    found = []
    for token in tokens:
        for t in [token, *(token.children or [])]:
            if t.type in ("html_inline", "html_block", "image"):
                found.append(t.content or t.type)
    return found


# --------------------------------------------------------------------------- markdown → HTML


@pytest.mark.parametrize("attack", ATTACKS)
def test_model_markdown_never_becomes_live_html(attack: str) -> None:
    assert_inert(markdown_html(attack))


def test_raw_html_is_shown_as_text() -> None:
    html = markdown_html("hi <script>window.__pwned=1</script> there")
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html


def test_markdown_image_becomes_a_link_and_is_never_loaded() -> None:
    html = markdown_html("![chart](https://example.com/c.png)")
    assert "<img" not in html
    assert 'href="https://example.com/c.png"' in html
    assert "[image: chart]" in html


def test_https_links_open_in_a_new_tab_without_opener() -> None:
    html = markdown_html("[docs](https://example.com)")
    assert 'href="https://example.com"' in html
    assert 'target="_blank"' in html and "noopener" in html


def test_only_http_https_and_mailto_become_links() -> None:
    # a relative link would open the Jupyter server's own pages (``/logout``) from a click
    text = (
        "[r](rel/x) [a](/logout) [p](//e.example/p) [f](ftp://e.example) ![i](img.png)"
        " [e]() [j](<javascript:x>) [t](<> 'title')"
    )
    for html in (markdown_html(text), inline_markdown_html(text)):
        assert "href" not in html
    assert "https://e.example" in markdown_html("[ok](https://e.example) <a@b.example>")
    assert "mailto:a@b.example" in markdown_html("<a@b.example>")


def test_tables_code_and_strikethrough_render() -> None:
    html = markdown_html(
        "| a | b |\n|:-|-:|\n| 1 | 2 |\n\n```python\nif a < b: pass\n```\n\n~~gone~~"
    )
    assert "<table>" in html and "text-align:right" in html
    assert '<code class="language-python">if a &lt; b: pass' in html
    assert "<s>gone</s>" in html


def test_inline_markdown_keeps_code_and_drops_blocks() -> None:
    assert inline_markdown_html("run `ls` *now* <b>x</b>") == (
        "run <code>ls</code> <em>now</em> &lt;b&gt;x&lt;/b&gt;"
    )


# --------------------------------------------------------------------------- markdown → markdown


@pytest.mark.parametrize("attack", ATTACKS)
def test_safe_markdown_is_inert_under_a_renderer_that_allows_html(attack: str) -> None:
    assert _html_tokens(safe_markdown(attack)) == []


def test_safe_markdown_keeps_code_verbatim() -> None:
    text = "Use `List<int>` here <img src=x onerror=alert(1)>\n\n```\n<b>kept</b>\n```"
    markdown = safe_markdown(text)
    assert "`List<int>`" in markdown
    assert "&lt;img src=x" in markdown
    assert "\n<b>kept</b>\n" in markdown


def test_safe_markdown_means_what_the_model_wrote() -> None:
    text = (
        "# Title\n\nSome *emphasis*, `code`, [a link](https://e.com) and ~~gone~~.\n\n"
        "- one\n- two\n  1. nested\n\n> quoted\n\n| a | b |\n|---|--:|\n| 1 | 2 |\n\n"
        "```py\nprint('<x>')\n```\n"
    )
    assert markdown_html(safe_markdown(text)) == markdown_html(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab <>/&`*_[]()!#->|~\\\n=:.1\"'", max_size=80))
def test_safe_markdown_is_inert_for_any_text(text: str) -> None:
    assert _html_tokens(safe_markdown(text)) == []


@pytest.mark.parametrize(
    "text",
    [
        "```\na",
        "~~~&#33;info\na",
        "- ```\n  a",
        "> ```\n> a",
        "    indented code",
        "a\n    ~~~",
        "~~~ ~~~```",
    ],
)
def test_safe_markdown_leaves_no_code_block_open(text: str) -> None:
    # the output is embedded among other markdown: an open fence would swallow what follows
    # and pair with a later fence, leaving text between them raw (live HTML)
    assert markdown_html(safe_markdown(text) + "\n\nAfter.").endswith("<p>After.</p>\n")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["a", " ", "\n", "\r", "```", "~~~", "    ", "> ", "- ", "1. ", "|", "<b>"]
        ),
        max_size=12,
    ).map("".join)
)
def test_safe_markdown_never_swallows_what_follows_it(text: str) -> None:
    assert markdown_html(safe_markdown(text) + "\n\nAfter.").endswith("<p>After.</p>\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Stopped from the notebook.", "Stopped from the notebook."),
        ("# not a heading", r"\# not a heading"),
        ("1. not a list", r"1\. not a list"),
        ("<img onerror=x> & co", "&lt;img onerror=x> &amp; co"),
        ("a*b*_c_`d`[e](f)|~", r"a\*b\*\_c\_\`d\`\[e\](f)\|\~"),
        ("a\r<div>\r\n# b", "a &lt;div> # b"),
    ],
)
def test_plain_text_in_markdown_is_shown_exactly(text: str, expected: str) -> None:
    assert md_text(text) == expected
    assert _html_tokens(md_text(text)) == []


def test_code_spans_and_fences_end_lines_where_markdown_does() -> None:
    # "\r" ends a line for every markdown renderer: it must not end a code span's line
    assert md_code("a\r<div>\r\nb") == "`a <div> b`"
    assert md_fence("a\r<div>\r\nb") == "```\na\n<div>\nb\n```"
    assert _html_tokens("> " + md_code("x\r<details open ontoggle=alert(1)>")) == []


def test_code_spans_and_fences_outgrow_the_backticks_they_hold() -> None:
    assert md_code("a ``b`` c") == "```a ``b`` c```"
    assert md_code("`x`") == "`` `x` ``"
    fenced = md_fence("```\n<img onerror=x>\n```", "py<script>")
    assert fenced.startswith("````pyscript\n") and fenced.endswith("\n````")
    assert _html_tokens(fenced) == []


# --------------------------------------------------------------------------- streaming segments


def test_only_blocks_followed_by_another_are_finished() -> None:
    assert split_finished_blocks("para one") == ([], 0)
    segments, offset = split_finished_blocks("para one\n\n- a\n- b\n\nrest")
    assert segments == ["<p>para one</p>\n", "<ul>\n<li>a</li>\n<li>b</li>\n</ul>\n"]
    assert offset == len("para one\n\n- a\n- b\n\n")


def test_the_unfinished_rest_starts_where_markdown_says_even_after_carriage_returns() -> None:
    # markdown-it counts "\r" and "\r\n" as line ends: so must the offset of the rest
    text = "para one\r\rpara two\r\n\r\nthi"
    segments, offset = split_finished_blocks(text)
    assert segments == ["<p>para one</p>\n", "<p>para two</p>\n"]
    assert text[offset:] == "thi"


def test_an_open_fence_is_never_finished() -> None:
    segments, offset = split_finished_blocks("intro\n\n```py\nx = 1\n\ny = 2\n")
    assert segments == ["<p>intro</p>\n"]
    assert offset == len("intro\n\n")


def test_a_paragraph_that_may_become_a_heading_is_not_finished() -> None:
    assert split_finished_blocks("Title\n") == ([], 0)
    assert split_finished_blocks("Title\n===\n\nnext")[0] == ["<h1>Title</h1>\n"]


# --------------------------------------------------------------------------- hostile input


HOSTILE = {
    "backticks": "`" * 1_000_000,
    "backtick runs": "".join("`" * i + " " for i in range(1, 1400)),
    "less-than": "<" * 1_000_000,
    "tags": "<a " * 330_000,
    "brackets": "[" * 1_000_000,
    "emphasis": "*a " * 330_000,
    "nested lists": "".join("  " * (i % 200) + "- x\n" for i in range(60_000)),
    "paragraphs of emphasis": ("*a " * 500 + "\n\n") * 650,
    "fences in lists": "- a\n  ```\n  <img onerror=x>\n" * 40_000,
    "reference definitions": "[a]: https://e.example\n" * 40_000,
}


def _raw_angles_outside_code(markdown: str) -> int:
    """``<`` that are not inside code or a link destination: where HTML could start.

    (Parsing a megabyte of output with a permissive, unguarded parser is itself
    quadratic, so the hostile cases use this linear check instead.)"""
    inside = 0
    for token in _GUARDED.parse(markdown):
        for t in [token, *(token.children or [])]:
            if t.type in ("fence", "code_block", "code_inline"):
                inside += t.content.count("<")
            elif t.type == "link_open":
                inside += 2  # [label](<href>)
    return markdown.count("<") - inside


@pytest.mark.timeout(60)  # a quadratic renderer would take minutes here
@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_megabyte_of_hostile_markdown_renders_safely(name: str) -> None:
    text = HOSTILE[name]
    assert_inert(markdown_html(text))
    assert _raw_angles_outside_code(safe_markdown(text)) == 0
    split_finished_blocks(text)


def test_a_table_is_not_padded_into_a_bigger_one() -> None:
    # padding every cell to its column's widest multiplies the size: one wide cell
    # per column and n rows give n x columns x width characters
    columns, width = 60, 200
    rows = [
        "|" + "|".join("x" * width if c == r else "" for c in range(columns)) + "|"
        for r in range(columns)
    ]
    table = "\n".join(["|" + "h|" * columns, "|" + "-|" * columns, *rows])
    assert len(safe_markdown(table)) < 2 * len(table)


def test_an_overlong_paragraph_is_shown_as_text() -> None:
    text = "*a* " + "x" * MAX_INLINE_CHARS
    assert "<em>" not in markdown_html(text)
    assert "<em>" in markdown_html("*a* " + "x" * 100)
