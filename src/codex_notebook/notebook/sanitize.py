"""Everything that turns untrusted text into markup, in one place.

The model, the commands it runs and the server all produce text we do not
trust.  Three doors lead from that text to something a browser interprets,
and all three are here:

* :func:`markdown_html` — model markdown to HTML: markdown-it (raw HTML shown
  as text, never interpreted) and then nh3 as a second line of defence.  Used
  by the live widget (as finished segments while text streams) and by the
  static output.
* :func:`safe_markdown` / :func:`md_text` / :func:`md_code` / :func:`md_fence`
  — the ``text/markdown`` output.  Whatever renderer shows it, HTML in model
  text stays text: the markdown is re-written from markdown-it's own parse
  (mdformat's renderer), code comes out verbatim inside fences longer than any
  backtick run in it, and ``<`` outside code becomes ``&lt;``.  No hand-written
  scanner decides what is code.
* :func:`clean_static_html` — the static HTML card, sanitized once more as a
  whole (inline styles allowed, nothing else).

Images in model markdown are never loaded: they become links the reader may
click (an image URL fetched automatically is a known way to leak data).  Links
keep only http, https and mailto.

Cost stays linear on hostile input: markdown-it's inline parser is
super-linear on some inputs (``*a *a …``, long runs of ``<`` or ``[``), so an
inline run that is very long or dense in delimiters is shown as literal text
instead of being parsed (:data:`MAX_INLINE_CHARS`, :data:`MAX_INLINE_DELIMITERS`).
"""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any

import mdformat.plugins
import nh3
from markdown_it import MarkdownIt
from markdown_it.rules_block import StateBlock
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from mdformat.renderer import DEFAULT_RENDERERS, MDRenderer, RenderContext, RenderTreeNode

from .text import reveal_invisible

__all__ = [
    "MATH_IGNORE_CLASS",
    "MAX_INLINE_CHARS",
    "MAX_INLINE_DELIMITERS",
    "MAX_REFERENCE_LINES",
    "clean_static_html",
    "escape_html",
    "fence_closing",
    "highlight_python",
    "inline_markdown_html",
    "markdown_html",
    "md_code",
    "md_fence",
    "md_text",
    "safe_markdown",
    "split_finished_blocks",
]

#: An inline run (a paragraph, heading or table cell) longer than this is shown as text.
MAX_INLINE_CHARS = 16_000
#: ... and so is one with more emphasis / link / code / HTML delimiters than this.
MAX_INLINE_DELIMITERS = 1_500
_DELIMITERS_RE = re.compile(r"[*_\[\]<`~!]")

_URL_SCHEMES = {"http", "https", "mailto"}
_LINK_RE = re.compile(r"(?i)^(https?:|mailto:)")


def escape_html(text: str) -> str:
    """Text for HTML element content or a quoted attribute value."""
    return html.escape(text, quote=True)


# --------------------------------------------------------------------------- parsing


def _guarded_inline(state: StateCore) -> None:
    """markdown-it's core ``inline`` rule, except hostile runs are left as text."""
    for token in state.tokens:
        if token.type != "inline":
            continue
        if token.children is None:
            token.children = []
        content = token.content
        if (
            len(content) > MAX_INLINE_CHARS
            or len(_DELIMITERS_RE.findall(content)) > MAX_INLINE_DELIMITERS
        ):
            text = Token("text", "", 0)
            text.content = content
            token.children.append(text)
        else:
            state.md.inline.parse(content, state.md, state.env, token.children)


#: A link reference definition is looked for within this many lines.
MAX_REFERENCE_LINES = 10


def _bounded(reference: Any) -> Any:
    """markdown-it's ``reference`` rule, reading at most :data:`MAX_REFERENCE_LINES` lines.

    The rule (markdown-it-py 3) joins every line up to the next blank one before it
    reads one definition, so n definitions in a row cost n² (a minute for 60 KB).
    """

    def rule(state: StateBlock, start: int, end: int, silent: bool) -> bool:
        line_max = state.lineMax
        state.lineMax = min(line_max, start + MAX_REFERENCE_LINES)
        try:
            return bool(reference(state, start, min(end, state.lineMax), silent))
        finally:
            state.lineMax = line_max

    return rule


def _render_image(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    """Images are never loaded: an http(s) image becomes a link, anything else its alt text."""
    token = tokens[idx]
    alt = escape_html(self.renderInlineAsText(token.children or [], options, env) or "image")
    src = str(token.attrGet("src") or "")
    if src.startswith(("https://", "http://")):
        return f'<a href="{escape_html(src)}">[image: {alt}]</a>'
    return f"[image: {alt}]"


def _unlink(state: StateCore) -> None:
    """Links whose target is not allowed keep only their text.

    ``validateLink`` stops most, but an empty destination (``[a]()``) still
    makes a link, to the page itself.
    """
    for token in state.tokens:
        if not token.children:
            continue
        kept: list[bool] = []  # per open link: was it kept
        children = []
        for child in token.children:
            if child.type == "link_open":
                kept.append(_LINK_RE.match(str(child.attrGet("href") or "")) is not None)
                if not kept[-1]:
                    continue
            elif child.type == "link_close" and kept and not kept.pop():
                continue
            children.append(child)
        token.children = children


class _Parser(MarkdownIt):
    def validateLink(self, url: str) -> bool:
        """Only http, https and mailto become links (or images); the rest stays text.

        markdown-it's default also allows relative URLs: in a notebook they point at
        the Jupyter server's own pages, one click away from ``/logout``.
        """
        return _LINK_RE.match(url) is not None


def _parser() -> MarkdownIt:
    md = _Parser("commonmark", {"html": False}).enable(["table", "strikethrough"])
    md.core.ruler.at("inline", _guarded_inline)
    md.core.ruler.after("inline", "cxn_unlink", _unlink)
    reference = next(r for r in md.block.ruler.__rules__ if r.name == "reference")
    md.block.ruler.at("reference", _bounded(reference.fn), {"alt": reference.alt})
    md.add_render_rule("image", _render_image)
    return md


_MD = _parser()
#: The same parser without inline parsing: where blocks start, ~3x cheaper on prose.
_MD_BLOCKS = _parser()
_MD_BLOCKS.core.ruler.disable("inline")

_MD_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt",
    "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "ins", "kbd", "li", "mark", "ol",
    "p", "pre", "q", "s", "samp", "small", "span", "strike", "strong", "sub", "summary",
    "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "u", "ul", "var",
}  # fmt: skip
_MD_ATTRS: dict[str, set[str]] = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "code": {"class"},
    "ol": {"start"},
    "td": {"style", "colspan", "rowspan", "align"},
    "th": {"style", "colspan", "rowspan", "align"},
}
_DROP_WITH_CONTENT = {"script", "style", "iframe", "object", "embed", "template", "noscript"}

_md_cleaner = nh3.Cleaner(
    tags=_MD_TAGS,
    clean_content_tags=_DROP_WITH_CONTENT,
    attributes=_MD_ATTRS,
    url_schemes=_URL_SCHEMES,
    link_rel="noopener noreferrer nofollow",
    set_tag_attribute_values={"a": {"target": "_blank"}},
    filter_style_properties={"text-align"},
)
_inline_cleaner = nh3.Cleaner(
    tags={"a", "code", "em", "strong", "s", "del", "br"},
    clean_content_tags=_DROP_WITH_CONTENT,
    attributes={"a": {"href", "title"}},
    url_schemes=_URL_SCHEMES,
    link_rel="noopener noreferrer nofollow",
    set_tag_attribute_values={"a": {"target": "_blank"}},
)


def markdown_html(text: str) -> str:
    """Model markdown → sanitized HTML (CommonMark + tables + strikethrough).

    Allowed: ordinary formatting, headings, lists, quotes, tables, code, and
    links with http/https/mailto (opened in a new tab, ``rel=noopener``).
    Shown as text: any raw HTML.  Removed: every ``<img>`` (markdown images
    become links), event handlers, other URL schemes.
    """
    return str(_md_cleaner.clean(_MD.render(text)))


def inline_markdown_html(text: str) -> str:
    """One line of model markdown (an approval's reason) → sanitized inline HTML."""
    return str(_inline_cleaner.clean(_MD.renderInline(text.replace("\n", " "))))


def split_finished_blocks(text: str) -> tuple[list[str], int]:
    """For text still streaming: the HTML of each top-level markdown block that
    is surely finished, and the offset in ``text`` where the unfinished rest begins.

    A block is finished once another top-level block has started after it
    (the last one may still grow: a list item, a fence, a paragraph that
    becomes a setext heading).  Rendering block by block gives the same HTML
    as rendering the whole text, except for reference-style links defined
    in a later block.  Where blocks start is found without inline parsing;
    only the finished blocks are parsed in full (a block's end depends on no
    line after the one that starts the next block).

    An unfinished last line made only of markdown's marker characters (or
    opening a fence) is left out: its start can read as a new block that the
    whole line is not — ``#`` is an empty heading, ``#include`` continues the
    paragraph above; ``2`` ends a list, ``2. b`` continues it.
    """
    last_line = max(text.rfind("\n"), text.rfind("\r")) + 1
    if _UNDECIDED_LINE_RE.fullmatch(text, last_line):
        text = text[:last_line]
    starts = _block_starts(_MD_BLOCKS.parse(text))
    if len(starts) < 2:
        return [], 0
    offset = 0  # where the last block's line starts; markdown-it ends lines at "\r" too
    for _ in range(starts[-1]):
        end = _LINE_END_RE.search(text, offset)
        offset = end.end() if end is not None else len(text)
    tokens = _MD.parse(text[:offset])
    bounds = [i for i, t in enumerate(tokens) if _is_block_start(t)] + [len(tokens)]
    segments = [
        str(_md_cleaner.clean(_MD.renderer.render(tokens[a:b], _MD.options, {})))
        for a, b in itertools.pairwise(bounds)
    ]
    return segments, offset


#: A line that may still become, or stop being, the start of a block as it grows.
_UNDECIDED_LINE_RE = re.compile(r"[ \t]*[`~]{3}.*|[-#*_+=~`|:>.)0-9 \t]*")


def _is_block_start(token: Token) -> bool:
    return token.level == 0 and token.nesting >= 0 and bool(token.map)


def _block_starts(tokens: Sequence[Token]) -> list[int]:
    """The first line of each top-level block."""
    return [t.map[0] for t in tokens if _is_block_start(t) and t.map]


#: The line that opens a fenced code block (the commonest block that grows huge).
_FENCE_OPEN_RE = re.compile(r" {0,3}(`{3,}|~{3,})")


def fence_closing(text: str) -> re.Pattern[str] | None:
    """If ``text`` starts with a code fence: the pattern of the line that closes it."""
    match = _FENCE_OPEN_RE.match(text)
    if match is None:
        return None
    marker = match.group(1)
    eol = text.find("\n")
    info = text[match.end() : eol if eol >= 0 else len(text)]
    if marker[0] == "`" and "`" in info:
        return None  # a backtick fence's info string has no backtick: this is inline code
    # "\r\n" ends a line too (markdown-it reads "\r" as a line end)
    return re.compile(rf"^ {{0,3}}{re.escape(marker[0])}{{{len(marker)},}}[ \t]*\r?$", re.M)


_code_cleaner = nh3.Cleaner(tags={"span"}, attributes={"span": {"class"}}, url_schemes=set())
#: Code longer than this is shown plain (highlighting is for reading a few lines).
MAX_HIGHLIGHT_CHARS = 20_000


def highlight_python(code: str) -> str:
    """Python code → HTML with token classes (``cxn-hl-k`` ...), sanitized; plain when long.

    Invisible and direction-changing characters are shown (:func:`.text.reveal_invisible`):
    the person approves or inserts the code they read.
    """
    if len(code) > MAX_HIGHLIGHT_CHARS:
        return reveal_invisible(escape_html(code))
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    formatter = HtmlFormatter(nowrap=True, classprefix="cxn-hl-")
    return reveal_invisible(str(_code_cleaner.clean(highlight(code, PythonLexer(), formatter))))


# --------------------------------------------------------------------------- markdown out


_LT = "\ue000"  # stands for "<" while mdformat escapes the rest of a text
_BANG = "\ue001"  # stands for a "!" that ends a text followed by more inline markdown
_DOLLAR = "\ue002"  # stands for "$"


def _text(node: RenderTreeNode, context: RenderContext) -> str:
    # Every "<" of model text becomes "&lt;": mdformat escapes only the ones CommonMark
    # would read as markup, and as "\<", which other renderers do not all honour.
    # A "!" just before what follows (an image rendered as a link, say) becomes "&#33;":
    # "!" + "[…](…)" would be an image, loaded as soon as the markdown is shown.
    # "$" becomes "\$": renderers with math support (GitHub, JupyterLab) would typeset
    # "$5 and $10" as a formula, and run model TeX through MathJax.
    # "~" becomes "\~": mdformat leaves it, so a paragraph line "~~~" (lazily indented in
    # the model's text) would start a fence that swallows the rest.
    token = node.token
    assert token is not None
    original = token.content
    content = original.replace("<", _LT).replace("$", _DOLLAR)
    if content.endswith("!") and node.next_sibling is not None:
        content = content[:-1] + _BANG
    token.content = content
    try:
        rendered = DEFAULT_RENDERERS["text"](node, context)
        rendered = rendered.replace("~", "\\~").replace(_LT, "&lt;").replace(_BANG, "&#33;")
        return rendered.replace(_DOLLAR, "\\$")
    finally:
        token.content = original


def _hardbreak(node: RenderTreeNode, context: RenderContext) -> str:
    # mdformat writes "<br />" in a heading (an ATX heading has one line): a space instead
    parent = node.parent
    while parent is not None and parent.type != "heading":
        parent = parent.parent
    return " " if parent is not None else "\\\n"


def _fence(node: RenderTreeNode, context: RenderContext) -> str:
    # As mdformat's, but always closed where the model's block ended.  mdformat writes the
    # closing fence right after the content ("```\na" left open at the end became "a```") and
    # the info string right after the opening one ("~~~ ~~~x" became the longer fence
    # "~~~~~~x", which "~~~" does not close): an open fence swallows what follows.
    info = node.info.strip()
    char = "~" if "`" in info else "`"  # a backtick fence's info has no backtick
    return _fenced(node.content, f" {info}" if info else "", char)


def _list_item(node: RenderTreeNode, context: RenderContext) -> str:
    # as mdformat's, but a list's tightness is worked out once, not once per item
    tight: dict[int, bool] = context.env.setdefault("cxn_tight_lists", {})
    parent = node.parent
    assert parent is not None
    if id(parent) not in tight:
        tight[id(parent)] = all(
            grandchild.hidden
            for child in parent.children
            for grandchild in child.children
            if grandchild.type == "paragraph"
        )
    separator = "\n" if tight[id(parent)] else "\n\n"
    text = separator.join(out for out in (child.render(context) for child in node.children) if out)
    return text if text.strip() else ""


def _link(node: RenderTreeNode, context: RenderContext) -> str:
    label = "".join(child.render(context) for child in node.children)
    href = str(node.attrs.get("href", ""))
    if not _LINK_RE.match(href):
        return label
    return f"[{label}](<{href.replace('<', '%3C').replace('>', '%3E')}>)"


def _image(node: RenderTreeNode, context: RenderContext) -> str:
    alt = "".join(child.render(context) for child in node.children) or "image"
    src = str(node.attrs.get("src", ""))
    if not src.startswith(("https://", "http://")):
        return f"\\[image: {alt}\\]"
    return f"[\\[image: {alt}\\]](<{src.replace('<', '%3C').replace('>', '%3E')}>)"


def _strikethrough(node: RenderTreeNode, context: RenderContext) -> str:
    return "~~" + "".join(child.render(context) for child in node.children) + "~~"


_DELIMITERS = {"left": ":--", "right": "--:", "center": ":-:"}


def _table(node: RenderTreeNode, context: RenderContext) -> str:
    # as mdformat-tables', but cells are not padded to their column's width: padding
    # multiplies the size (one wide cell per column, n rows: n x columns x width)
    lines = []
    for row in (n for n in node.walk(include_self=False) if n.type == "tr"):
        cells = [cell.render(context) for cell in row.children]
        lines.append("| " + " | ".join(cells) + " |")
        if len(lines) == 1:
            aligns = [str(cell.attrs.get("style", "")).partition(":")[2] for cell in row.children]
            lines.append("| " + " | ".join(_DELIMITERS.get(a, "---") for a in aligns) + " |")
    return "\n".join(lines)


_TABLES = mdformat.plugins.PARSER_EXTENSIONS["tables"]


class _SafeMarkdownPlugin:
    """mdformat renderers that keep model HTML, images and odd links inert (and
    mdformat-tables' cells and escaping, with tables of our own)."""

    RENDERERS: Mapping[str, Callable[[RenderTreeNode, RenderContext], str]] = {
        "text": _text,
        "hardbreak": _hardbreak,
        "fence": _fence,
        "code_block": _fence,
        "link": _link,
        "image": _image,
        "s": _strikethrough,
        "list_item": _list_item,
        "table": _table,
        "th": _TABLES.RENDERERS["th"],
        "td": _TABLES.RENDERERS["td"],
    }
    POSTPROCESSORS: Mapping[str, Any] = dict(_TABLES.POSTPROCESSORS)

    @staticmethod
    def update_mdit(mdit: MarkdownIt) -> None:
        pass


_MDFORMAT_OPTIONS: MutableMapping[str, Any] = {
    **_MD.options,
    "parser_extension": [_SafeMarkdownPlugin],
    "mdformat": {"number": True},
}


def safe_markdown(text: str) -> str:
    """Model markdown → equivalent markdown that no renderer can turn into live HTML."""
    if not text.strip():
        return ""
    return MDRenderer().render(_MD.parse(text), _MDFORMAT_OPTIONS, {}).strip()


#: Where CommonMark ends a line: "\n", "\r\n" and a lone "\r" alike.
_LINE_END_RE = re.compile(r"\r\n?|\n")
_MD_INLINE_RE = re.compile(r"([\\`*_\[\]~|$])")
_MD_LINE_START_RE = re.compile(
    r"^(\s*)(>|#{1,6}(?=\s|$)|[-+](?=\s|$)|\d{1,9}(?=[.)](?:\s|$))|[-=](?=[-=\s]*$))"
)


def md_text(text: str) -> str:
    """Plain text as inert markdown: shown exactly, never markup (one line)."""
    text = _LINE_END_RE.sub(" ", text)
    text = text.replace("&", "&amp;").replace("<", "&lt;")
    text = _MD_INLINE_RE.sub(r"\\\1", text)
    return _MD_LINE_START_RE.sub(_escape_line_start, text)


def _escape_line_start(match: re.Match[str]) -> str:
    indent, marker = match.group(1), match.group(2)
    if marker[0].isdigit():  # "1." / "1)": escape the delimiter after the digits
        return indent + marker + "\\"
    return indent + "\\" + marker


def _longest_run(text: str, char: str) -> int:
    longest = run = 0
    for c in text:
        run = run + 1 if c == char else 0
        longest = max(longest, run)
    return longest


def md_code(text: str) -> str:
    """Text as an inline code span (one line), whatever backticks it holds."""
    text = _LINE_END_RE.sub(" ", text)
    ticks = "`" * (_longest_run(text, "`") + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


_INFO_RE = re.compile(r"[^A-Za-z0-9_+\-.]")


def md_fence(text: str, info: str = "") -> str:
    """Text as a fenced code block, shown verbatim whatever it holds.

    Line ends become ``\\n``: a lone ``\\r`` ends a line for a markdown renderer, and
    a caller that prefixes lines (a quote) must see every line.
    """
    return _fenced(_LINE_END_RE.sub("\n", text), _INFO_RE.sub("", info))


def _fenced(body: str, info: str, char: str = "`") -> str:
    """``body`` between fences of ``char`` longer than any run of it inside: always closed."""
    if body and not body.endswith("\n"):
        body += "\n"
    fence = char * max(3, _longest_run(body, char) + 1)
    return f"{fence}{info}\n{body}{fence}"


# --------------------------------------------------------------------------- static HTML

_STATIC_STYLE_PROPS = {
    "background", "border", "border-bottom", "border-left", "border-radius", "color", "cursor",
    "display", "font-family", "font-size", "font-weight", "line-height", "margin", "max-height",
    "opacity", "overflow", "overflow-x", "padding", "text-align", "text-decoration",
    "white-space", "word-break", "border-collapse", "list-style", "padding-left",
}  # fmt: skip
#: The one class the static card carries: MathJax (JupyterLab, nbviewer) leaves it alone.
MATH_IGNORE_CLASS = "tex2jax_ignore mathjax_ignore"

_static_cleaner = nh3.Cleaner(
    tags=_MD_TAGS | {"details", "summary"},
    clean_content_tags=_DROP_WITH_CONTENT,
    attributes={**_MD_ATTRS, "*": {"style", "title"}},
    allowed_classes={"div": set(MATH_IGNORE_CLASS.split())},
    url_schemes=_URL_SCHEMES,
    link_rel="noopener noreferrer nofollow",
    set_tag_attribute_values={"a": {"target": "_blank"}},
    filter_style_properties=_STATIC_STYLE_PROPS,
)


def clean_static_html(fragment: str) -> str:
    """The whole static card, sanitized: inline styles allowed, nothing active."""
    return str(_static_cleaner.clean(fragment))
