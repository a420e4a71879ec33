"""What a value looks like, for the model: the ``variables`` rows and the ``inspect`` answer.

Good answers for real data, capped:

- pandas / polars data frames and series: shape, columns and dtypes, missing values when cheap,
  the index, memory when cheap, the head as text;
- numpy arrays: shape, dtype, size, min / max / mean / std and NaN count (over a strided sample
  of :data:`STATS_MAX_ELEMENTS` for bigger arrays), a few values;
- dicts, lists, tuples, sets: length, element types (over the first :data:`TYPE_SAMPLE`), a sample;
- strings and bytes: length, lines, head … tail;
- modules (left out of ``variables``, summarised by ``inspect``), functions and classes
  (signature, first doc paragraph, source when defined in the notebook);
- matplotlib figures and axes: what is on them, plus a small PNG when cheap (:mod:`.figures`);
- anything else: type, ``shape``/``dtype`` if it has them, a capped repr, its attributes.

pandas, numpy, polars and matplotlib are never imported here (recognised via ``sys.modules``).
Every call into the object (``repr``, ``len``, ``.head()``) is guarded: an exception becomes
"repr failed: …" in the answer; slowness is bounded by the caller's time budget (:mod:`.budget`),
after which the answer says what was skipped.  Nothing here is quadratic in the object's size:
containers are sampled with ``islice``, strings are sliced before they are scrubbed, arrays are
strided.  Runs on the kernel's main thread.
"""

from __future__ import annotations

import collections
import contextlib
import fnmatch
import inspect
import itertools
import reprlib
import sys
import types
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

from .answer import MAX_ANSWER_CHARS, Answer, cap, finish
from .budget import BudgetExceeded, Deadline, time_limit
from .figures import figure_lines, figure_of, render_png
from .secrets import HIDDEN_CELL, HIDDEN_VALUE, Scrubber, hides_value, is_credential_name

__all__ = [
    "DEFAULT_VARIABLES",
    "HEAD_ROWS",
    "MAX_COLUMNS_LISTED",
    "MAX_SECTION_CHARS",
    "MAX_SUMMARY_CHARS",
    "MAX_VARIABLES",
    "SAMPLE_ITEMS",
    "STATS_MAX_ELEMENTS",
    "TYPE_SAMPLE",
    "VariableSummary",
    "describe",
    "list_variables",
    "summarize",
    "type_name",
]

#: Longest preview in a ``variables`` row (characters, one line).
MAX_SUMMARY_CHARS: Final = 100
#: Rows a ``variables`` answer lists by default, and at most.
DEFAULT_VARIABLES: Final = 50
MAX_VARIABLES: Final = 200
#: Rows of a data frame's head.
HEAD_ROWS: Final = 5
#: Columns whose dtype is listed one by one.
MAX_COLUMNS_LISTED: Final = 60
#: Longest single section (a head table, a repr, a source listing), in characters.
MAX_SECTION_CHARS: Final = 2_500
#: Items shown from a container.
SAMPLE_ITEMS: Final = 10
#: Elements whose types are counted in a container.
TYPE_SAMPLE: Final = 1_000
#: Array elements (or frame cells) up to which statistics / missing counts use every value.
STATS_MAX_ELEMENTS: Final = 10_000_000


class _ShortRepr(reprlib.Repr):
    """``reprlib`` limits (so a million-item list costs a few items), but secrets are scrubbed
    before anything is cut, and a failing ``__repr__`` is reported instead of disguised."""

    def __init__(self, scrub: Callable[[str], str]) -> None:
        super().__init__()
        self.maxstring = self.maxother = 80
        self.maxlist = self.maxtuple = self.maxset = self.maxfrozenset = self.maxdict = 6
        self.maxdeque = self.maxarray = 6
        self.maxlevel = 2
        self._scrub = scrub

    def repr_str(self, x: str, level: int) -> str:
        return super().repr_str(_scrub_ends(x, self._scrub, self.maxstring), level)

    def repr_instance(self, x: object, level: int) -> str:
        try:
            text = repr(x)
        except Exception as exc:
            return _failed("repr", exc)
        return finish(text, self.maxother, scrub=self._scrub, keep="middle")


def _scrub_ends(text: str, scrub: Callable[[str], str], keep: int) -> str:
    """Scrub the parts of a long string that a head…tail cut can show (cheap for huge strings)."""
    window = keep + 512
    if len(text) <= 2 * window:
        return scrub(text)
    return scrub(text[:window]) + " … " + scrub(text[-window:])


@dataclass(frozen=True)
class VariableSummary:
    """One row of the ``variables`` answer."""

    name: str
    type_name: str
    size: str | None
    preview: str

    def line(self) -> str:
        size = f", {self.size}" if self.size else ""
        preview = f": {self.preview}" if self.preview else ""
        return f"- {self.name} ({self.type_name}{size}){preview}"


# --- recognising types without importing their libraries -----------------------------------


def _class(module: str, name: str) -> type | None:
    mod = sys.modules.get(module)
    cls = vars(mod).get(name) if mod is not None else None
    return cls if isinstance(cls, type) else None


def _is(value: object, module: str, name: str) -> bool:
    cls = _class(module, name)
    return cls is not None and isinstance(value, cls)


_SHORT_MODULES: Final = ("pandas", "numpy", "polars", "matplotlib", "torch", "scipy", "sklearn")


def type_name(value: object) -> str:
    """A readable type name: ``pandas.DataFrame``, ``numpy.ndarray``, ``int``, ``MyModel``."""
    return _class_name(type(value))


def _class_name(cls: type) -> str:
    module = getattr(cls, "__module__", "") or ""
    qualname = str(getattr(cls, "__qualname__", cls.__name__))
    if module in ("builtins", "__main__"):
        return qualname
    top = module.split(".")[0]
    return f"{top if top in _SHORT_MODULES else module}.{qualname}"


# --- small guarded helpers --------------------------------------------------------------------


def _failed(what: str, exc: Exception) -> str:
    message = str(exc) if _plain_str(exc) else ""
    return f"<{what} failed: {type(exc).__name__}{': ' + message if message else ''}>"


def _plain_str(exc: Exception) -> bool:
    try:
        str(exc)
    except Exception:
        return False
    return True


def _safe(what: str, fn: Callable[[], str]) -> str:
    try:
        return fn()
    except Exception as exc:
        return _failed(what, exc)


def short_repr(value: object, scrub: Callable[[str], str], limit: int = MAX_SUMMARY_CHARS) -> str:
    """One scrubbed line of at most ``limit`` characters; never raises (but for the budget)."""
    try:
        text = _ShortRepr(scrub).repr(value)
    except Exception as exc:
        return _failed("repr", exc)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _long_repr(value: object, scrub: Callable[[str], str], limit: int = MAX_SECTION_CHARS) -> str:
    try:
        text = repr(value)
    except Exception as exc:
        return _failed("repr", exc)
    return finish(text, limit, scrub=scrub, keep="middle")


def _n(value: int) -> str:
    return f"{value:,}"


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover - loop always returns


def _sized_len(value: object) -> int | None:
    if not hasattr(type(value), "__len__"):
        return None
    try:
        n = len(value)  # type: ignore[arg-type]
    except Exception:
        return None
    return n if isinstance(n, int) else None


@contextmanager
def _quiet() -> Iterator[None]:
    """Our probing must not print warnings into the user's cell (pandas, numpy)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# --- the variables tool ---------------------------------------------------------------------


def summarize(name: str, value: object, *, scrubber: Scrubber | None = None) -> VariableSummary:
    """The ``variables`` row for one value: type, size (shape / len) and a one-line preview.

    Calls into the value (``len``, ``repr``): main thread, under the caller's time budget.
    The preview is scrubbed of secrets; a credential-named value shows :data:`HIDDEN_VALUE`.
    """
    tname = type_name(value)
    if hides_value(name, value):
        return VariableSummary(name, tname, None, HIDDEN_VALUE)
    with _quiet():
        try:
            size, preview = _summary_parts(value, scrubber or Scrubber())
        except Exception as exc:
            size, preview = None, _failed("summary", exc)
    preview = " ".join(preview.split())
    if len(preview) > MAX_SUMMARY_CHARS:
        preview = preview[: MAX_SUMMARY_CHARS - 1] + "…"
    return VariableSummary(name, tname, size, preview)


def _summary_parts(value: object, scrub: Callable[[str], str]) -> tuple[str | None, str]:
    if _is(value, "pandas", "DataFrame") or _is(value, "polars", "DataFrame"):
        rows, cols = value.shape  # type: ignore[attr-defined]
        columns = ", ".join(str(c) for c in itertools.islice(value.columns, 12))  # type: ignore[attr-defined]
        more = f" … (+{cols - 12})" if cols > 12 else ""
        return f"{_n(rows)} rows × {_n(cols)} columns", f"columns {columns}{more}"
    if _is(value, "pandas", "Series") or _is(value, "polars", "Series"):
        return f"len {_n(len(value))}", f"dtype {value.dtype}, name {value.name!r}"  # type: ignore[arg-type,attr-defined]
    if _is(value, "numpy", "ndarray"):
        return f"shape {tuple(value.shape)}", f"dtype {value.dtype}"  # type: ignore[attr-defined]
    if isinstance(value, types.ModuleType):
        return None, f"module {getattr(value, '__name__', '?')}"
    if isinstance(value, type):
        return None, f"class {value.__qualname__}{_signature(value, 60)}"
    if inspect.isroutine(value):
        return None, f"{getattr(value, '__qualname__', '?')}{_signature(value, 80)}"
    fig = figure_of(value)
    if fig is not None:
        return None, figure_lines(fig)[0]
    if isinstance(value, (str, bytes, bytearray)):
        return f"len {_n(len(value))}", short_repr(value, scrub)
    size: str | None = None
    shape = _attribute(value, "shape")
    if isinstance(shape, tuple):
        size = f"shape {shape}"
    else:
        n = _sized_len(value)
        size = f"len {_n(n)}" if n is not None else None
    return size, short_repr(value, scrub)


def _attribute(value: object, attr: str) -> Any:
    """A data attribute (``shape``, ``dtype``) if the object has one; None otherwise."""
    try:
        found = getattr(value, attr, None)
    except Exception:
        return None
    return None if callable(found) else found


def list_variables(
    items: Iterable[tuple[str, object]],
    *,
    pattern: str | None = None,
    limit: int = DEFAULT_VARIABLES,
    budget: float | None = 2.0,
    scrubber: Scrubber | None = None,
) -> Answer:
    """The ``variables`` answer: one row per user variable, modules left out.

    ``items`` are the user's variables (:func:`.namespace.user_variables`).  ``pattern`` is a
    case-sensitive glob on the name.  Functions and classes imported from libraries are named
    in one line at the end rather than given rows.  If the time budget runs out, the remaining
    rows show name and type only.
    """
    limit = max(1, min(int(limit), MAX_VARIABLES))
    scrub = scrubber or Scrubber()
    rows: list[tuple[str, object]] = []
    imported: list[str] = []
    for name, value in items:
        if pattern and not fnmatch.fnmatchcase(name, pattern):
            continue
        try:
            module, code = isinstance(value, types.ModuleType), _imported_code(value)
        except Exception:  # isinstance raises for a proxy whose __class__ raises
            module = code = False
        if module:
            continue
        if code:
            imported.append(name)
            continue
        rows.append((name, value))
    lines: list[str] = []
    shown = rows[:limit]
    budget_note = ""
    try:
        with time_limit(budget) as deadline:
            for name, value in shown:
                deadline.check()
                lines.append(summarize(name, value, scrubber=scrub).line())
    except BudgetExceeded:
        done = len(lines)
        budget_note = (
            f"[time budget of {budget:g} s ran out: the last {len(shown) - done} rows show "
            "name and type only]"
        )
        lines.extend(f"- {n} ({type_name(v)})" for n, v in shown[done:])
    where = f" matching {pattern!r}" if pattern else ""
    if not rows:
        header = f"No variables{where} in the notebook."
    else:
        header = f"{len(rows)} variables{where}" + (
            f" (showing the first {limit}; pass a pattern or a larger limit to see others):"
            if len(rows) > limit
            else ":"
        )
    parts = [header, *lines]
    if budget_note:
        parts.append(budget_note)
    if imported:
        names = ", ".join(imported[:40]) + (
            f" … (+{len(imported) - 40})" if len(imported) > 40 else ""
        )
        parts.append(f"Imported functions and classes (inspect them by name): {names}")
    return Answer(
        finish("\n".join(parts), MAX_ANSWER_CHARS, scrub=scrub, what="characters of the listing")
    )


def _imported_code(value: object) -> bool:
    if not (isinstance(value, type) or inspect.isroutine(value)):
        return False
    return getattr(value, "__module__", "__main__") not in ("__main__", None)


# --- the inspect tool -----------------------------------------------------------------------


class _Lines:
    """The answer under construction; remembers which section is being computed."""

    def __init__(self, scrub: Callable[[str], str]) -> None:
        self.scrub = scrub
        self.lines: list[str] = []
        self.images: list[str] = []
        self.section = "the summary"
        self.deadline: Deadline | None = None

    def at(self, section: str) -> None:
        """Start computing ``section`` (checks the budget first, for when it is cooperative)."""
        if self.deadline is not None:
            self.deadline.check()
        self.section = section

    def add(self, line: str) -> None:
        self.lines.append(line)

    def block(self, title: str, text: str, limit: int = MAX_SECTION_CHARS) -> None:
        self.lines.append(f"{title}:")
        self.lines.append(finish(text.rstrip("\n"), limit, scrub=self.scrub, keep="middle"))

    def text(self) -> str:
        return "\n".join(self.lines)


def describe(
    name: str,
    value: object,
    *,
    budget: float | None = 3.0,
    scrubber: Scrubber | None = None,
    image: bool = True,
) -> Answer:
    """The ``inspect`` answer for ``value`` (found under ``name``), capped and scrubbed.

    ``budget`` bounds the time spent calling into the value (seconds; enforced on the main
    thread, see :mod:`.budget`).  ``image=False`` skips rendering figures.  Never raises for a
    misbehaving object: failures and the time budget are reported in the text.
    """
    scrub = scrubber or Scrubber()
    out = _Lines(scrub)
    tname = type_name(value)
    if hides_value(name, value):
        out.add(f"{name}: {tname}")
        out.add(f"value: {HIDDEN_VALUE} (not shown to you; ask the user if you need it)")
        return Answer(scrub(out.text()))
    try:
        with time_limit(budget) as deadline, _quiet():
            out.deadline = deadline
            _describe_into(out, name, value, tname, image=image)
    except Exception as exc:  # a proxy whose every attribute raises (flask's ``request``)
        if not out.lines:
            out.add(f"{name}: {tname}")
        out.add(_failed(f"computing {out.section}", exc))
    except BudgetExceeded:
        out.add(
            f"[time budget of {budget:g} s ran out while computing {out.section}; "
            "the rest was skipped]"
        )
    text = finish(out.text(), MAX_ANSWER_CHARS, scrub=scrub, what="characters of the answer")
    return Answer(text, images=tuple(out.images[:1]))


def _describe_into(out: _Lines, name: str, value: object, tname: str, *, image: bool) -> None:
    if _is(value, "pandas", "DataFrame"):
        _pandas_frame(out, name, value, tname)
    elif _is(value, "pandas", "Series"):
        _pandas_series(out, name, value, tname)
    elif _is(value, "polars", "DataFrame"):
        _polars_frame(out, name, value, tname)
    elif _is(value, "polars", "LazyFrame"):
        _polars_lazy(out, name, value, tname)
    elif _is(value, "polars", "Series"):
        _polars_series(out, name, value, tname)
    elif _is(value, "numpy", "ndarray"):
        _numpy_array(out, name, value, tname)
    elif isinstance(value, types.ModuleType):
        _module(out, name, value)
    elif isinstance(value, type) or inspect.isroutine(value):
        _code(out, name, value, tname)
    elif figure_of(value) is not None:
        _figure(out, name, figure_of(value), tname, image=image)
    elif isinstance(value, (str, bytes, bytearray)):
        _text(out, name, value, tname)
    elif isinstance(value, Mapping):
        _mapping(out, name, value, tname)
    elif isinstance(value, (list, tuple, set, frozenset, collections.deque)):
        _collection(out, name, value, tname)
    else:
        _other(out, name, value, tname)


# pandas


def _hidden_columns(columns: Iterable[object]) -> list[object]:
    return [c for c in columns if isinstance(c, str) and is_credential_name(c)]


def _pandas_frame(out: _Lines, name: str, df: Any, tname: str) -> None:
    rows, cols = df.shape
    out.add(f"{name}: {tname} — {_n(rows)} rows × {_n(cols)} columns")
    out.at("the memory use")
    out.add(
        "memory: "
        + _safe(
            "memory",
            lambda: (
                _bytes(int(df.memory_usage(index=True, deep=False).sum()))
                + " (object contents not counted)"
            ),
        )
    )
    out.at("the index")
    out.add("index: " + _safe("index", lambda: _pandas_index(df.index, out.scrub)))
    out.at("the missing-value counts")
    missing: dict[Any, int] | None = None  # None: not counted
    scannable = rows * max(cols, 1) <= STATS_MAX_ELEMENTS
    if scannable:
        with contextlib.suppress(Exception):
            missing = {k: int(v) for k, v in df.isna().sum().items()}
    out.at("the column dtypes")
    hidden = _hidden_columns(df.columns)
    column_lines = []
    for col, dtype in itertools.islice(df.dtypes.items(), MAX_COLUMNS_LISTED):
        extra = f", {_n(missing[col])} missing" if missing and missing.get(col) else ""
        secret = " (values hidden: the name looks like a credential)" if col in hidden else ""
        column_lines.append(f"  {col!s} ({dtype}){extra}{secret}")
    if cols > MAX_COLUMNS_LISTED:
        column_lines.append(f"  [… {_n(cols - MAX_COLUMNS_LISTED)} more columns not listed]")
    if missing is None:
        note = (
            " (missing values not counted: frame too large to scan)"
            if not scannable
            else " (missing values could not be counted)"
        )
    else:
        note = "" if any(missing.values()) else " (no missing values)"
    out.add(f"columns (dtype){note}:")
    out.lines.extend(column_lines)
    out.at("the head")
    out.block(f"head({HEAD_ROWS})", _safe("head", lambda: _pandas_head(df, hidden)))


def _pandas_head(df: Any, hidden: list[object]) -> str:
    head = df.head(HEAD_ROWS)
    if hidden:
        head = head.copy()
        for col in hidden:
            try:
                head[col] = HIDDEN_CELL
            except Exception:
                head = head.drop(columns=[col])
    return str(head.to_string(max_cols=20, max_colwidth=40, show_dimensions=False))


def _pandas_index(index: Any, scrub: Callable[[str], str]) -> str:
    kind = type(index).__name__
    if kind == "RangeIndex":
        return repr(index)
    n = len(index)
    names = [str(level) for level in getattr(index, "names", []) if level is not None]
    parts = [kind, f"dtype {index.dtype}" if kind != "MultiIndex" else f"{index.nlevels} levels"]
    if names:
        parts.append(f"names {', '.join(names)}")
    if n:
        parts.append(
            f"first {short_repr(index[0], scrub, 40)}, last {short_repr(index[-1], scrub, 40)}"
        )
    if n and n <= STATS_MAX_ELEMENTS:
        parts.append("unique" if index.is_unique else "has duplicates")
    return ", ".join(parts)


def _pandas_series(out: _Lines, name: str, s: Any, tname: str) -> None:
    n = len(s)
    out.add(f"{name}: {tname} {s.name!r} — {_n(n)} values, dtype {s.dtype}")
    if isinstance(s.name, str) and is_credential_name(s.name):
        out.add(f"values: {HIDDEN_VALUE}")
        return
    out.at("the index")
    out.add("index: " + _safe("index", lambda: _pandas_index(s.index, out.scrub)))
    if n <= STATS_MAX_ELEMENTS:
        out.at("the statistics")
        out.add(_safe("statistics", lambda: _series_stats(s, out.scrub)))
    out.at("the head")
    out.block(f"head({HEAD_ROWS})", _safe("head", lambda: str(s.head(HEAD_ROWS).to_string())))


def _series_stats(s: Any, scrub: Callable[[str], str]) -> str:
    missing = int(s.isna().sum())
    kind = getattr(s.dtype, "kind", "O")
    parts = [f"{_n(missing)} missing"]
    if kind in "iuf" and len(s) - missing > 0:
        parts.append(
            f"min {s.min():.6g}, max {s.max():.6g}, mean {s.mean():.6g}, std {s.std():.6g}"
        )
    elif kind in "mM" and len(s) - missing > 0:
        parts.append(f"from {s.min()} to {s.max()}")
    elif kind in "OSUb" or str(s.dtype) in ("category", "string", "str"):
        top = s.value_counts().head(5)
        parts.append(
            f"{_n(int(s.nunique()))} distinct; most common: "
            + ", ".join(f"{short_repr(k, scrub, 30)} ×{_n(int(v))}" for k, v in top.items())
        )
    return "; ".join(parts)


# polars


def _polars_frame(out: _Lines, name: str, df: Any, tname: str) -> None:
    rows, cols = df.shape
    out.add(f"{name}: {tname} — {_n(rows)} rows × {_n(cols)} columns")
    out.at("the memory use")
    out.add("memory: about " + _safe("memory", lambda: _bytes(float(df.estimated_size()))))
    out.at("the null counts")
    nulls: dict[str, int] = {}
    try:
        nulls = {c: int(v) for c, v in df.null_count().row(0, named=True).items()}
    except Exception:
        nulls = {}
    hidden = _hidden_columns(df.columns)
    out.add("columns (dtype):")
    for col, dtype in itertools.islice(df.schema.items(), MAX_COLUMNS_LISTED):
        extra = f", {_n(nulls[col])} null" if nulls.get(col) else ""
        secret = " (values hidden: the name looks like a credential)" if col in hidden else ""
        out.add(f"  {col} ({dtype}){extra}{secret}")
    if cols > MAX_COLUMNS_LISTED:
        out.add(f"  [… {_n(cols - MAX_COLUMNS_LISTED)} more columns not listed]")
    out.at("the head")
    out.block(f"head({HEAD_ROWS})", _safe("head", lambda: _polars_head(df, hidden)))


def _polars_head(df: Any, hidden: list[object]) -> str:
    pl = sys.modules["polars"]
    head = df.head(HEAD_ROWS)
    if hidden:
        head = head.with_columns(pl.lit(HIDDEN_CELL).alias(str(c)) for c in hidden)
    with pl.Config(tbl_cols=20, fmt_str_lengths=40, tbl_rows=HEAD_ROWS, tbl_width_chars=160):
        return str(head)


def _polars_lazy(out: _Lines, name: str, lf: Any, tname: str) -> None:
    # Only the plan's schema: no rows.  (polars may run a UDF without a return dtype to
    # learn its schema; the time budget bounds that.)
    out.add(f"{name}: {tname} — a lazy query, not executed (collect it to see rows)")
    out.at("the schema")
    schema = lf.collect_schema()
    out.add(f"columns (dtype), {len(schema)} from the query plan:")
    for col, dtype in itertools.islice(schema.items(), MAX_COLUMNS_LISTED):
        out.add(f"  {col} ({dtype})")
    if len(schema) > MAX_COLUMNS_LISTED:
        out.add(f"  [… {_n(len(schema) - MAX_COLUMNS_LISTED)} more columns not listed]")


def _polars_series(out: _Lines, name: str, s: Any, tname: str) -> None:
    out.add(f"{name}: {tname} {s.name!r} — {_n(len(s))} values, dtype {s.dtype}")
    if is_credential_name(str(s.name)):
        out.add(f"values: {HIDDEN_VALUE}")
        return
    out.add("nulls: " + _safe("null count", lambda: _n(int(s.null_count()))))
    out.at("the head")
    pl = sys.modules["polars"]

    def head() -> str:
        with pl.Config(fmt_str_lengths=40, tbl_rows=HEAD_ROWS):
            return str(s.head(HEAD_ROWS))

    out.block(f"head({HEAD_ROWS})", _safe("head", head))


# numpy


def _numpy_array(out: _Lines, name: str, a: Any, tname: str) -> None:
    np = sys.modules["numpy"]
    out.add(
        f"{name}: {tname} — shape {tuple(a.shape)}, dtype {a.dtype}, "
        f"{_n(int(a.size))} elements, {_bytes(float(a.nbytes))}"
    )
    if a.dtype.names:
        out.add("fields: " + ", ".join(f"{f}: {a.dtype.fields[f][0]}" for f in a.dtype.names[:40]))
    out.at("the statistics")
    if a.size and a.dtype.kind in "biuf":
        out.add(_safe("statistics", lambda: _array_stats(np, a)))
    elif a.size and a.dtype.kind in "mM":
        out.add(_safe("range", lambda: f"min {a.min()}, max {a.max()}"))
    out.at("the values")
    out.block(
        "values",
        _safe(
            "values",
            lambda: str(
                np.array2string(a, threshold=40, edgeitems=3, max_line_width=100, precision=6)
            ),
        ),
    )


def _array_stats(np: Any, a: Any) -> str:
    sample = a
    note = ""
    if a.size > STATS_MAX_ELEMENTS:
        step = -(-a.size // STATS_MAX_ELEMENTS)
        sample = a.flat[::step]
        note = f" (over every {_n(step)}th element: {_n(int(sample.size))} of {_n(int(a.size))})"
    if a.dtype.kind == "b":
        return f"{_n(int(np.count_nonzero(sample)))} True of {_n(int(sample.size))}{note}"
    parts = []
    if a.dtype.kind == "f":
        nan = int(np.isnan(sample).sum())
        inf = int(np.isinf(sample).sum())
        parts.append(f"NaN {_n(nan)}" + (f", ±inf {_n(inf)}" if inf else ""))
        finite = sample[np.isfinite(sample)]
    else:
        finite = sample
    if finite.size:
        parts.insert(
            0,
            f"min {finite.min():.6g}, max {finite.max():.6g}, "
            f"mean {finite.mean(dtype='float64'):.6g}, std {finite.std(dtype='float64'):.6g}",
        )
    return "stats: " + "; ".join(parts) + note


# containers and text


def _text(out: _Lines, name: str, value: str | bytes | bytearray, tname: str) -> None:
    n = len(value)
    if isinstance(value, str):
        lines = value.count("\n") + 1 if value else 0
        out.add(f"{name}: {tname} — {_n(n)} characters, {_n(lines)} lines")
        out.block("text", value, MAX_SECTION_CHARS * 3 // 2)
        return
    out.add(f"{name}: {tname} — {_n(n)} bytes")
    head = bytes(value[:600])
    try:
        decoded = head.decode("utf-8")
        out.block("as UTF-8 (head)" if n > 600 else "as UTF-8", decoded)
    except UnicodeDecodeError:
        out.block("head (repr)" if n > 600 else "repr", repr(head))


def _mapping(out: _Lines, name: str, value: Mapping[Any, Any], tname: str) -> None:
    scrub = out.scrub
    n = _sized_len(value)
    out.add(f"{name}: {tname} — {_n(n) if n is not None else 'unknown number of'} keys")
    out.at("the key and value types")
    items = list(itertools.islice(value.items(), TYPE_SAMPLE))
    sampled = f" (first {_n(len(items))})" if n is not None and n > len(items) else ""
    out.add(f"key types{sampled}: {_type_counts(k for k, _ in items)}")
    out.add(f"value types{sampled}: {_type_counts(v for _, v in items)}")
    out.at("the items")
    out.add(f"items (first {min(SAMPLE_ITEMS, len(items))}):")
    for key, item in items[:SAMPLE_ITEMS]:
        shown = (
            HIDDEN_VALUE
            if isinstance(key, str) and hides_value(key, item)
            else short_repr(item, scrub)
        )
        out.add(f"  {short_repr(key, scrub, 60)}: {shown}")
    if n is not None and n > SAMPLE_ITEMS:
        out.add(f"  [… {_n(n - SAMPLE_ITEMS)} more items]")


def _collection(out: _Lines, name: str, value: Any, tname: str) -> None:
    scrub = out.scrub
    n = len(value)
    ordered = not isinstance(value, (set, frozenset))
    out.add(f"{name}: {tname} — {_n(n)} items" + ("" if ordered else " (unordered)"))
    out.at("the element types")
    sample = list(itertools.islice(value, TYPE_SAMPLE))
    sampled = f" (first {_n(len(sample))})" if n > len(sample) else ""
    out.add(f"element types{sampled}: {_type_counts(sample)}")
    out.at("the items")
    if n <= SAMPLE_ITEMS + 2 or not ordered:
        out.add(f"items{'' if n <= SAMPLE_ITEMS else f' (first {SAMPLE_ITEMS})'}:")
        for i, item in enumerate(sample[:SAMPLE_ITEMS]):
            out.add(
                f"  [{i}] {short_repr(item, scrub)}" if ordered else f"  {short_repr(item, scrub)}"
            )
        if not ordered and n > SAMPLE_ITEMS:
            out.add(f"  [… {_n(n - SAMPLE_ITEMS)} more items]")
        return
    out.add(f"items (first {SAMPLE_ITEMS} and last 2):")
    for i, item in enumerate(sample[:SAMPLE_ITEMS]):
        out.add(f"  [{i}] {short_repr(item, scrub)}")
    out.add(f"  [… {_n(n - SAMPLE_ITEMS - 2)} items]")
    tail = list(value[-2:]) if isinstance(value, (list, tuple)) else list(value)[-2:]
    for i, item in enumerate(tail, n - 2):
        out.add(f"  [{i}] {short_repr(item, scrub)}")


def _type_counts(values: Iterable[object]) -> str:
    counts = collections.Counter(type_name(v) for v in values)
    if not counts:
        return "(empty)"
    shown = ", ".join(f"{t} ×{_n(c)}" for t, c in counts.most_common(8))
    return shown + (f", … ({len(counts) - 8} more types)" if len(counts) > 8 else "")


# code


def _signature(value: Any, limit: int) -> str:
    try:
        sig = str(inspect.signature(value))
    except (TypeError, ValueError):
        return "(…)"
    return sig if len(sig) <= limit else sig[: limit - 1] + "…"


def _first_paragraph(doc: str | None, limit: int = 800) -> str | None:
    """The first real paragraph of a docstring (a title with an underline is skipped)."""
    if not doc:
        return None
    for para in doc.strip().split("\n\n"):
        lines = [line.strip() for line in para.strip().splitlines()]
        if not lines or (len(lines) <= 2 and set(lines[-1]) <= set("=-~#*")):
            continue
        return cap("\n".join(lines), limit)
    return None


def _module(out: _Lines, name: str, module: types.ModuleType) -> None:
    members = vars(module)
    version = members.get("__version__")
    where = members.get("__file__") or "built in"
    out.add(
        f"{name}: module {module.__name__}"
        + (f" {version}" if isinstance(version, str) else "")
        + f" — {where}"
    )
    doc = _first_paragraph(
        members.get("__doc__") if isinstance(members.get("__doc__"), str) else None
    )
    if doc:
        out.block("doc", doc)
    public = sorted(k for k in members if not k.startswith("_"))
    shown = ", ".join(public[:80]) + (f" … (+{len(public) - 80})" if len(public) > 80 else "")
    out.add(f"public names ({_n(len(public))}): {shown}")


def _code(out: _Lines, name: str, value: Any, tname: str) -> None:
    is_class = isinstance(value, type)
    module = getattr(value, "__module__", None)
    origin = "defined in this notebook" if module == "__main__" else f"from {module}"
    label = "class" if is_class else tname
    qualname = getattr(value, "__qualname__", name)
    out.add(f"{name}: {label} {qualname} — {origin}")
    out.at("the signature")
    out.add(f"signature: {qualname}{_signature(value, 400)}")
    if is_class:
        bases = [_class_name(b) for b in value.__mro__[1:-1]][:8]
        if bases:
            out.add("bases: " + ", ".join(bases))
        methods = [k for k, v in vars(value).items() if not k.startswith("_") and callable(v)]
        if methods:
            out.add("methods: " + ", ".join(methods[:40]))
    elif isinstance(value, types.MethodType):
        out.add(f"bound to: {type_name(value.__self__)}")
    out.at("the docstring")
    doc = _first_paragraph(inspect.getdoc(value))
    if doc:
        out.block("doc", doc)
    if module == "__main__":
        out.at("the source")
        try:
            source = inspect.getsource(value)
        except (OSError, TypeError):
            source = ""
        if source:
            out.block("source", source, MAX_SECTION_CHARS)


# figures and everything else


def _figure(out: _Lines, name: str, fig: Any, tname: str, *, image: bool) -> None:
    out.add(f"{name}: {tname}")
    out.at("the figure's contents")
    for line in figure_lines(fig):
        out.add(line)
    if not image:
        return
    out.at("the figure's picture")
    try:
        rendered = render_png(fig)
    except Exception as exc:
        out.add("image: " + _failed("rendering", exc))
        return
    out.add(f"image: {rendered.note}")
    if rendered.url:
        out.images.append(rendered.url)


def _other(out: _Lines, name: str, value: object, tname: str) -> None:
    scrub = out.scrub
    out.add(f"{name}: {tname}")
    out.at("the shape")
    shape = _attribute(value, "shape")
    dtype = _attribute(value, "dtype")
    facts = []
    if shape is not None:
        facts.append(f"shape {short_repr(shape, scrub, 60)}")
    if dtype is not None:
        facts.append(f"dtype {short_repr(dtype, scrub, 40)}")
    n = _sized_len(value)
    if n is not None:
        facts.append(f"len {_n(n)}")
    if facts:
        out.add(", ".join(facts))
    out.at("the repr")
    out.block("repr", _long_repr(value, scrub))
    out.at("the attributes")
    try:
        attrs = vars(value)
    except TypeError:
        return
    public = [
        (k, v) for k, v in list(attrs.items()) if isinstance(k, str) and not k.startswith("_")
    ]
    if not public:
        return
    out.add(f"attributes ({_n(len(public))}):")
    for key, item in public[:20]:
        shown = HIDDEN_VALUE if hides_value(key, item) else short_repr(item, scrub, 80)
        out.add(f"  {key} = {shown}  ({type_name(item)})")
    if len(public) > 20:
        out.add(f"  [… {_n(len(public) - 20)} more attributes]")
