"""Read facts out of the notebook tools' answers, the way a model would: from their text.

The demo model (:mod:`codex_notebook.demo.kernel_story`) decides its next step from what the
``notebook.*`` client tools answered. Those answers are text written for a model, and their exact
layout belongs to the notebook layer, not to the demo, so every reader here is tolerant: it
accepts JSON documents as well as the text layouts a tool would plausibly print (``name: type``
lines, markdown tables and bullets, pandas' own reprs), and returns ``None`` / empty when a fact
is not there rather than guessing. Everything is a pure function of strings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._escapes import strip_ansi

__all__ = [
    "ErrorFacts",
    "FrameFacts",
    "Variable",
    "code_blocks",
    "error_facts",
    "failing_line",
    "frame_facts",
    "inline_code",
    "is_refusal",
    "pick_frame",
    "variables",
]

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_FENCE_RE = re.compile(r"^([ \t]*)(`{3,}|~{3,})([^\n`]*)\n(.*?)^\1\2[ \t]*$", re.M | re.S)
_INLINE_CODE_RE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
_VAR_LINE_RE = re.compile(
    rf"^\s*(?:[-*+]\s+|\d+[.)]\s+)?(?:\*\*)?`?(?P<name>{_IDENT})`?(?:\*\*)?"
    r"(?:\s*(?::|=|—|–|-|\()\s*|\s{2,}|\t)(?P<rest>.*)$"
)
_SKIP_NAMES = frozenset({"name", "names", "variable", "variables", "note", "showing", "total"})
# Type words that make a variable look like tabular data, with a score (higher = more likely).
_FRAME_WORDS: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(r"\bDataFrame\b"), 100),
    (re.compile(r"\bLazyFrame\b"), 90),
    (re.compile(r"\bSeries\b"), 40),
    (re.compile(r"\bndarray\b|\barray\b", re.I), 30),
    (re.compile(r"\bdict\b|\blist\b|\btuple\b", re.I), 5),
)
_NOT_DATA_RE = re.compile(r"\b(?:module|function|method|class|type|builtin)\b", re.I)
_SHAPE_RES = (
    re.compile(r"\[\s*([\d,_]+)\s+rows?\s*[x×]\s*([\d,_]+)\s+columns?\s*\]", re.I),
    re.compile(r"\bshape\b\W{0,3}\(?\s*([\d,_]+)\s*[,x×]\s*([\d,_]+)\s*\)?", re.I),
    re.compile(r"([\d,_]+)\s+rows?\s*(?:[x×,]|by|and)\s*([\d,_]+)\s+col(?:umn)?s?\b", re.I),
    re.compile(r"\b(?:Data|Lazy)Frame\b\W{0,3}\(\s*([\d,_]+)\s*,\s*([\d,_]+)\s*\)"),
)
_COLUMNS_LIST_RE = re.compile(
    r"\bcolumns?\b\s*[:=]?\s*(?:Index\()?\[([^\]]*)\]|^\s*Index\(\[([^\]]*)\]", re.I | re.M
)
_DTYPE_WORD = (
    r"(?:u?int\d*|float\d*|complex\d*|bool(?:ean)?|object|string|str|category|categorical|"
    r"datetime64\[[^\]]*\]|datetime\w*|timedelta\w*|period\[[^\]]*\]|Int\d+|Float\d+|"
    r"Utf8|String|Boolean|Date|Datetime\S*|Categorical|i\d+|f\d+)"
)
_DTYPE_LINE_RE = re.compile(
    rf"^\s*(?:[-*+]\s+)?`?(?P<col>[^\s`:|]+)`?\s*(?::\s*|\s{{2,}}|\t|\s+)(?P<dtype>{_DTYPE_WORD})\s*$"
    # the notebook's own inspect answer: "  revenue (float64)" / "  x (float64, 2 missing)"
    rf"|^\s+(?P<col2>[^\s(]+)\s+\((?P<dtype2>{_DTYPE_WORD})\b[^)]*\)\s*$"
)
_DTYPES_HEADER_RE = re.compile(
    r"^\s*(?:#+\s*)?(?:\*\*)?(?:dtypes?|columns?)(?:\*\*)?(?:\s*\([^)]*\))*\s*:?\s*$", re.I
)
_EXC_LINE_RE = re.compile(
    r"^(?:[\w.]+\.)?(?P<type>[A-Z]\w*(?:Error|Exception|Exit|Interrupt|Warning|Iteration))"
    r"\s*(?::\s?(?P<message>.*))?$"
)
_ARROW_RE = re.compile(r"^\s*-+>\s*(?:\d+\s+)?(?P<code>.+?)\s*$")
_FRAME_HEADER_RE = re.compile(
    r"^\s*(?P<where>Cell In\s*\[\d*\].*|Input In\s*\[\d*\].*|File \S.*?:\d+.*|"
    r'File "[^"]*", line \d+.*)$'
)
_LIBRARY_RE = re.compile(r"site-packages|dist-packages|[/\\]lib[/\\]python\d|<frozen ")
_REFUSAL_RE = re.compile(
    r"\b(?:declined|refused|denied|rejected|not allowed|turned (?:it )?off|disabled|"
    r"did not run|was not run|not run)\b",
    re.I,
)


@dataclass(frozen=True)
class Variable:
    """One entry of a ``notebook.variables`` answer: its name and the rest of its description."""

    name: str
    description: str

    @property
    def frame_score(self) -> int:
        """How much this looks like tabular data (0 = not at all)."""
        if _NOT_DATA_RE.search(self.description) and "DataFrame" not in self.description:
            return 0
        return max((score for rx, score in _FRAME_WORDS if rx.search(self.description)), default=0)

    @property
    def size(self) -> int:
        """Rows from a shape in the description (0 when none), to break ties between frames."""
        shape = _shape(self.description)
        return shape[0] if shape else 0


@dataclass(frozen=True)
class FrameFacts:
    """What an ``inspect`` answer says about a table: shape, column names, a head excerpt."""

    shape: tuple[int, int] | None
    columns: tuple[str, ...]
    head: str | None

    @property
    def known(self) -> bool:
        """True when at least the shape or the columns were found."""
        return self.shape is not None or bool(self.columns)


@dataclass(frozen=True)
class ErrorFacts:
    """What a ``last_error`` answer (or a pasted traceback) says about the failure."""

    type: str
    message: str
    line: str | None  # the failing source line, from the traceback's arrow or frame line

    @property
    def summary(self) -> str:
        """``"KeyError: 'prcie'"``."""
        return f"{self.type}: {self.message}" if self.message else self.type

    @property
    def key(self) -> str | None:
        """The missing key of a ``KeyError: 'x'`` (None for other errors or non-string keys)."""
        if self.type != "KeyError":
            return None
        match = re.fullmatch(r"""\s*(['"])(.*)\1\s*""", self.message)
        return match.group(2) if match else None

    @property
    def missing_name(self) -> str | None:
        """The undefined name of a ``NameError: name 'x' is not defined``."""
        if self.type not in ("NameError", "UnboundLocalError"):
            return None
        match = re.search(rf"""(?:name|variable)\s+'({_IDENT})'""", self.message)
        return match.group(1) if match else None

    @property
    def suggestion(self) -> str | None:
        """Python's own ``Did you mean: 'y'?`` hint, when the message carries one."""
        match = re.search(rf"""Did you mean:?\s*'({_IDENT})'""", self.message)
        return match.group(1) if match else None


def _loads(text: str) -> Any:
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        return None


def _int(text: str) -> int:
    return int(re.sub(r"[,_]", "", text))


def _shape(text: str) -> tuple[int, int] | None:
    for rx in _SHAPE_RES:
        match = rx.search(text)
        if match:
            try:
                return _int(match.group(1)), _int(match.group(2))
            except ValueError:
                continue
    return None


def code_blocks(text: str) -> list[tuple[str, str]]:
    """Every fenced block in *text* as ``(info, body)``, in order (info lower-cased)."""
    return [(m.group(3).strip().lower(), m.group(4)) for m in _FENCE_RE.finditer(strip_ansi(text))]


def inline_code(text: str) -> str | None:
    """The first inline ``code`` span or fenced block of a prompt, if any (stripped)."""
    blocks = code_blocks(text)
    if blocks:
        return blocks[0][1].strip() or None
    match = _INLINE_CODE_RE.search(text)
    return match.group(1).strip() if match else None


def is_refusal(text: str) -> bool:
    """True when a tool answer says the call was declined, denied or turned off."""
    first = next((line for line in text.strip().splitlines() if line.strip()), "")
    return bool(_REFUSAL_RE.search(first))


# --- variables ----------------------------------------------------------------------------------


def _variables_from_json(doc: Any) -> list[Variable] | None:
    if isinstance(doc, Mapping):
        for key in ("variables", "items", "result"):
            if isinstance(doc.get(key), list):
                return _variables_from_json(doc[key])
        if all(isinstance(v, (Mapping, str)) for v in doc.values()) and doc:
            return [
                Variable(str(name), v if isinstance(v, str) else json.dumps(v, sort_keys=True))
                for name, v in doc.items()
            ]
        return None
    if isinstance(doc, list):
        found = []
        for entry in doc:
            if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
                rest = {k: v for k, v in entry.items() if k != "name"}
                found.append(Variable(entry["name"], _describe_json(rest)))
        return found
    return None


def _describe_json(fields: Mapping[str, Any]) -> str:
    """``{"type": "DataFrame", "shape": [3, 2]}`` -> ``"DataFrame shape (3, 2)"``."""
    parts = []
    for key, value in fields.items():
        if key == "shape" and isinstance(value, list) and len(value) == 2:
            parts.append(f"shape ({value[0]}, {value[1]})")
        elif isinstance(value, (str, int, float)):
            parts.append(str(value) if key in ("type", "kind") else f"{key} {value}")
        else:
            parts.append(f"{key} {json.dumps(value)}")
    return " ".join(parts)


def _table_row(line: str) -> tuple[str, str] | None:
    cells = [cell.strip().strip("`").strip() for cell in line.strip().strip("|").split("|")]
    if len(cells) < 2 or not re.fullmatch(_IDENT, cells[0]):
        return None
    return cells[0], " ".join(cells[1:])


def variables(answer: str) -> list[Variable]:
    """The variables listed in a ``notebook.variables`` answer, in their order (no duplicates)."""
    answer = strip_ansi(answer)
    parsed = _variables_from_json(_loads(answer))
    if parsed is not None:
        return parsed
    found: dict[str, Variable] = {}
    for line in answer.splitlines():
        if not line.strip() or re.fullmatch(r"[\s|:\-+=]*", line):
            continue
        if line.lstrip().startswith("|"):
            row = _table_row(line)
        else:
            match = _VAR_LINE_RE.match(line)
            row = (match.group("name"), match.group("rest")) if match else None
        if row is None:
            continue
        name, rest = row
        if name.lower() in _SKIP_NAMES or name.startswith("_") or name in found:
            continue
        found[name] = Variable(name, rest.strip())
    return list(found.values())


def pick_frame(candidates: Iterable[Variable]) -> Variable | None:
    """The most DataFrame-looking variable (score, then rows, then first listed), or None."""
    best: Variable | None = None
    for var in candidates:
        if var.frame_score <= 0:
            continue
        if best is None or (var.frame_score, var.size) > (best.frame_score, best.size):
            best = var
    return best


# --- inspect ------------------------------------------------------------------------------------


def _frame_from_json(doc: Mapping[str, Any]) -> FrameFacts:
    shape = doc.get("shape")
    shape_t: tuple[int, int] | None = None
    if isinstance(shape, Sequence) and len(shape) == 2 and all(isinstance(n, int) for n in shape):
        shape_t = (int(shape[0]), int(shape[1]))
    columns: tuple[str, ...] = ()
    if isinstance(doc.get("columns"), list):
        columns = tuple(str(c) for c in doc["columns"])
    elif isinstance(doc.get("dtypes"), Mapping):
        columns = tuple(str(c) for c in doc["dtypes"])
    head = doc.get("head")
    return FrameFacts(shape_t, columns, head if isinstance(head, str) else None)


def _split_names(listing: str) -> tuple[str, ...]:
    names = []
    for part in listing.split(","):
        name = part.strip().strip("'\"`").strip()
        if name and name != "...":
            names.append(name)
    return tuple(names)


def _dtype_block_columns(lines: Sequence[str]) -> tuple[str, ...]:
    """Columns from a ``dtypes:`` block (pandas' ``df.dtypes`` or ``- name: dtype`` bullets)."""
    for index, line in enumerate(lines):
        if not _DTYPES_HEADER_RE.match(line):
            continue
        names: list[str] = []
        for follow in lines[index + 1 :]:
            match = _DTYPE_LINE_RE.match(follow)
            if match is None:
                if names or follow.strip():
                    break
                continue
            names.append(match.group("col") or match.group("col2"))
        if names:
            return tuple(name for name in names if name.lower() not in ("dtype", "dtypes"))
    return ()


def frame_facts(answer: str) -> FrameFacts:
    """Shape, columns and a head excerpt from an ``inspect`` answer about a frame.

    Reads JSON (``shape``, ``columns`` or ``dtypes``, ``head``) or text: ``shape: (3, 2)``,
    ``3 rows × 2 columns``, pandas' ``[3 rows x 2 columns]``; ``columns: [a, b]`` or
    ``Index(['a', 'b'])``; a ``dtypes:`` block; the first fenced block as the head.
    """
    answer = strip_ansi(answer)
    doc = _loads(answer)
    if isinstance(doc, Mapping):
        return _frame_from_json(doc)
    columns: tuple[str, ...] = ()
    match = _COLUMNS_LIST_RE.search(answer)
    if match:
        columns = _split_names(match.group(1) or match.group(2) or "")
    if not columns:
        columns = _dtype_block_columns(answer.splitlines())
    blocks = code_blocks(answer)
    head = blocks[0][1].rstrip("\n") if blocks else None
    return FrameFacts(_shape(answer), columns, head)


# --- last_error ---------------------------------------------------------------------------------


def error_facts(text: str) -> ErrorFacts | None:
    """The exception a ``last_error`` answer or a traceback reports (the last one), or None."""
    text = strip_ansi(text)
    found: ErrorFacts | None = None
    for raw in text.splitlines():
        line = raw.strip().lstrip("#>*- ").strip("`*")
        match = _EXC_LINE_RE.match(line)
        if match and match.group("type") not in ("Traceback",):
            message = (match.group("message") or "").strip().rstrip("`")
            found = ErrorFacts(match.group("type"), message, None)
    if found is None:
        return None
    return ErrorFacts(found.type, found.message, failing_line(text))


def failing_line(traceback_text: str) -> str | None:
    """The user's source line a traceback points at, or None.

    IPython marks the line with ``---->`` under a ``Cell In[n], line k`` header, and library
    frames (``File ~/.../frame.py:4102, in ...``) follow with arrows of their own; plain Python
    tracebacks print ``File "...", line k`` and the line below it. The innermost frame that is
    the user's own code wins (a cell, stdin, or a file outside site-packages and the stdlib).
    """
    text = strip_ansi(traceback_text)
    user_frame = False
    expect_code = False
    found: str | None = None
    first_arrow: str | None = None
    for line in text.splitlines():
        header = _FRAME_HEADER_RE.match(line)
        if header is not None:
            where = header.group("where")
            user_frame = not _LIBRARY_RE.search(where)
            expect_code = where.startswith('File "')
            continue
        arrow = _ARROW_RE.match(line)
        if arrow is not None:
            first_arrow = first_arrow or arrow.group("code")
            if user_frame:
                found = arrow.group("code")
            expect_code = False
            continue
        if expect_code and line.strip():
            if user_frame:
                found = line.strip()
            expect_code = False
    return found or first_arrow
