"""The ``inspect`` and ``variables`` answers on real objects: frames, arrays, containers, text,
code, figures, secrets, and objects that misbehave."""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest

from codex_notebook.notebook.tools.answer import MAX_ANSWER_CHARS
from codex_notebook.notebook.tools.describe import (
    MAX_SUMMARY_CHARS,
    describe,
    list_variables,
    summarize,
    type_name,
)
from codex_notebook.notebook.tools.secrets import HIDDEN_VALUE

OPENAI = "sk-proj-Ab3dEf9hIj2kLm5nOp8qRs1tUv4wXy7zAb3dEf9hIj2k"


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    df = pd.DataFrame(
        {
            "price": rng.normal(100, 5, 1000),
            "qty": rng.integers(1, 10, 1000),
            "city": rng.choice(["Oslo", "Lima", "Pune"], 1000),
        },
        index=pd.date_range("2024-01-01", periods=1000, freq="h", name="ts"),
    )
    df.iloc[3, 0] = np.nan
    df.iloc[5, 0] = np.nan
    return df


class ReprRaises:
    def __repr__(self) -> str:
        raise ValueError("broken repr")


class ReprSleeps:
    def __repr__(self) -> str:
        time.sleep(30)
        return "never"


class LenRaises:
    def __len__(self) -> int:
        raise RuntimeError("no len")


# --- pandas -----------------------------------------------------------------------------------


def test_a_data_frame_answer_has_shape_dtypes_index_missing_and_head(frame: pd.DataFrame) -> None:
    text = describe("df", frame).text
    assert "df: pandas.DataFrame — 1,000 rows × 3 columns" in text
    assert "price (float64), 2 missing" in text
    assert "qty (int64)" in text
    assert "DatetimeIndex" in text and "names ts" in text and "2024-01-01" in text
    assert "memory:" in text
    head = text.split("head(5):", 1)[1]
    assert "Oslo" in head or "Lima" in head or "Pune" in head
    assert len(head.strip().splitlines()) == 7  # column header, index name row, 5 rows


def test_a_million_row_frame_answer_is_bounded_and_fast() -> None:
    n = 1_000_000
    df = pd.DataFrame({"a": np.arange(n), "b": np.linspace(0, 1, n), "c": ["x"] * n})
    started = time.monotonic()
    answer = describe("big", df, budget=10)
    assert time.monotonic() - started < 10
    assert "1,000,000 rows × 3 columns" in answer.text
    assert len(answer.text) <= MAX_ANSWER_CHARS + 100
    assert "time budget" not in answer.text


def test_a_wide_frame_lists_some_columns_and_says_how_many_more() -> None:
    df = pd.DataFrame(np.zeros((3, 100)), columns=[f"c{i}" for i in range(100)])
    text = describe("wide", df).text
    assert "c59 (float64)" in text
    assert "c60 (float64)" not in text
    assert "40 more columns not listed" in text


def test_a_credential_named_column_is_hidden_in_the_head() -> None:
    df = pd.DataFrame({"user": ["ann", "bob"], "password": ["hunter22", "letmein99"]})
    text = describe("users", df).text
    assert "hunter22" not in text and "letmein99" not in text
    assert "password (" in text and "values hidden" in text
    assert "ann" in text


def test_a_series_answer_has_stats_and_most_common_values(frame: pd.DataFrame) -> None:
    numeric = describe("p", frame["price"]).text
    assert "1,000 values, dtype float64" in numeric and "2 missing" in numeric
    assert "mean" in numeric and "std" in numeric
    categorical = describe("c", frame["city"]).text
    assert "3 distinct" in categorical and "most common" in categorical


def test_a_data_frame_summary_row_names_shape_and_columns(frame: pd.DataFrame) -> None:
    row = summarize("df", frame)
    assert row.type_name == "pandas.DataFrame"
    assert row.size == "1,000 rows × 3 columns"
    assert "price, qty, city" in row.preview


# --- polars -----------------------------------------------------------------------------------


def test_a_polars_frame_answer_has_schema_nulls_and_head() -> None:
    pl = pytest.importorskip("polars")
    df = pl.DataFrame({"a": [1, 2, None], "name": ["x", "y", "z"], "api_token": ["t1", "t2", "t3"]})
    text = describe("pdf", df).text
    assert "polars.DataFrame — 3 rows × 3 columns" in text
    assert "a (Int64), 1 null" in text
    assert "name (String)" in text
    assert "t1" not in text and "values hidden" in text


def test_a_polars_lazy_frame_shows_its_schema_but_no_rows() -> None:
    pl = pytest.importorskip("polars")
    lazy = pl.LazyFrame({"a": [123456789], "b": ["x"]}).filter(pl.col("a") > 0)
    text = describe("lf", lazy).text
    assert "not executed" in text and "a (Int64)" in text and "b (String)" in text
    assert "123456789" not in text


# --- numpy ------------------------------------------------------------------------------------


def test_an_array_answer_has_shape_dtype_stats_nan_count_and_values() -> None:
    a = np.arange(12, dtype=float).reshape(3, 4)
    a[1, 1] = np.nan
    text = describe("a", a).text
    assert "shape (3, 4), dtype float64, 12 elements" in text
    assert "min 0, max 11" in text and "NaN 1" in text
    assert "[[ 0." in text


def test_a_huge_array_is_summarised_over_a_strided_sample() -> None:
    a = np.ones(30_000_000, dtype=np.float32)
    text = describe("huge", a, budget=10).text
    assert "over every 3th element" in text
    assert "mean 1" in text


def test_bool_empty_and_object_arrays_are_described() -> None:
    assert "2 True of 3" in describe("b", np.array([True, False, True])).text
    assert "shape (0,)" in describe("e", np.array([])).text
    assert "dtype object" in describe("o", np.array([object(), 1], dtype=object)).text


# --- containers and text ----------------------------------------------------------------------


def test_a_dict_answer_has_len_types_and_a_sample_with_secrets_hidden() -> None:
    d = {"a": 1, "b": [1, 2, 3], "api_key": "abcdefgh1234", "nested": {"x": OPENAI}}
    text = describe("d", d).text
    assert "d: dict — 4 keys" in text
    assert "value types: int ×1, list ×1, str ×1, dict ×1" in text
    assert f"'api_key': {HIDDEN_VALUE}" in text
    assert "abcdefgh1234" not in text and OPENAI[:10] not in text


def test_a_long_list_shows_head_tail_and_sampled_types() -> None:
    items: list[object] = list(range(100_000))
    items[5] = "five"
    text = describe("xs", items).text
    assert "100,000 items" in text
    assert "element types (first 1,000): int ×999, str ×1" in text
    assert "[5] 'five'" in text and "[99999] 99999" in text
    assert "99,988 items" in text


def test_a_set_is_described_as_unordered() -> None:
    assert "(unordered)" in describe("s", set(range(50))).text


def test_a_huge_string_shows_head_and_tail_and_says_what_was_cut() -> None:
    text_value = "HEAD" + "m" * 10_000_000 + "TAIL"
    started = time.monotonic()
    text = describe("s", text_value).text
    assert time.monotonic() - started < 5
    assert "10,000,008 characters" in text
    assert "HEAD" in text and "TAIL" in text
    assert "characters cut" in text
    assert len(text) <= MAX_ANSWER_CHARS + 200


def test_a_secret_inside_a_string_is_scrubbed() -> None:
    text = describe("log", f"connecting with {OPENAI} now").text
    assert OPENAI[:10] not in text and "[REDACTED]" in text


def test_bytes_show_length_and_a_decoded_head() -> None:
    text = describe("raw", b"hello bytes" * 100).text
    assert "1,100 bytes" in text and "hello bytes" in text


# --- secrets ----------------------------------------------------------------------------------


def test_a_credential_variable_shows_its_type_but_never_its_value() -> None:
    answer = describe("OPENAI_API_KEY", "plain-value-123")
    assert "OPENAI_API_KEY: str" in answer.text
    assert "plain-value-123" not in answer.text and HIDDEN_VALUE in answer.text
    row = summarize("db_password", "hunter2")
    assert row.type_name == "str" and row.preview == HIDDEN_VALUE


def test_attributes_with_credential_names_are_hidden() -> None:
    class Client:
        def __init__(self) -> None:
            self.base_url = "https://api.example.com"
            self.api_key = "abcdefgh12345678"

    text = describe("client", Client()).text
    assert "https://api.example.com" in text
    assert "abcdefgh12345678" not in text and f"api_key = {HIDDEN_VALUE}" in text


# --- misbehaving objects ----------------------------------------------------------------------


def test_a_repr_that_raises_is_reported_not_raised() -> None:
    answer = describe("bad", ReprRaises())
    assert "repr failed: ValueError: broken repr" in answer.text
    assert "repr failed" in summarize("bad", ReprRaises()).preview


def test_a_repr_that_sleeps_is_cut_off_by_the_time_budget() -> None:
    started = time.monotonic()
    answer = describe("slow", ReprSleeps(), budget=0.3)
    assert time.monotonic() - started < 3
    assert "time budget of 0.3 s ran out while computing the repr" in answer.text


def test_a_len_that_raises_still_gives_a_row() -> None:
    row = summarize("thing", LenRaises())
    assert row.name == "thing" and row.size is None


class Proxy:
    """Like flask's ``request`` outside a request: every attribute raises, ``__class__`` too
    (so ``isinstance`` raises for any class it is not)."""

    def __getattribute__(self, name: str) -> Any:
        raise RuntimeError("Working outside of request context.")


def test_a_proxy_whose_every_attribute_raises_still_gets_a_row_and_the_others_too() -> None:
    text = list_variables([("request", Proxy()), ("n", 3)]).text
    assert "- n (int): 3" in text
    assert "- request (" in text and "Working outside of request context" in text


def test_inspecting_a_proxy_whose_every_attribute_raises_reports_it() -> None:
    text = describe("request", Proxy()).text
    assert text.startswith("request: ")
    assert "Working outside of request context" in text


def test_a_summary_preview_is_one_short_line() -> None:
    row = summarize("s", "line one\nline two " * 1000)
    assert "\n" not in row.preview and len(row.preview) <= MAX_SUMMARY_CHARS


# --- code and modules -------------------------------------------------------------------------


def sample_function(x: int, y: int = 2) -> int:
    """Add two numbers.

    The second paragraph is not shown.
    """
    return x + y


class SampleModel:
    """A model with a fit method."""

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def fit(self, data: list[int]) -> SampleModel:
        return self


def test_a_function_answer_has_signature_and_first_doc_paragraph() -> None:
    text = describe("sample_function", sample_function).text
    # Annotations are strings here (``from __future__ import annotations``): shown as written,
    # never evaluated.
    assert "signature: sample_function(x: 'int', y: 'int' = 2) -> 'int'" in text
    assert "Add two numbers." in text and "second paragraph" not in text


def test_a_class_answer_has_signature_bases_and_methods() -> None:
    text = describe("SampleModel", SampleModel).text
    assert "class SampleModel" in text
    assert "SampleModel(alpha: 'float' = 1.0)" in text
    assert "methods: fit" in text


def test_a_function_defined_in_the_notebook_shows_its_source() -> None:
    namespace: dict[str, Any] = {"__name__": "__main__"}
    code = "def double(v):\n    return v * 2\n"
    import linecache

    linecache.cache["<cell-7>"] = (len(code), None, code.splitlines(True), "<cell-7>")
    exec(compile(code, "<cell-7>", "exec"), namespace)
    text = describe("double", namespace["double"]).text
    assert "defined in this notebook" in text and "return v * 2" in text


def test_a_module_is_summarised_by_inspect_and_left_out_of_variables() -> None:
    text = describe("np", np).text
    assert f"np: module numpy {np.__version__}" in text
    assert "public names" in text and "arange" in text
    listing = list_variables([("np", np), ("x", 1)]).text
    assert "- np" not in listing and "- x (int)" in listing


# --- figures ----------------------------------------------------------------------------------


def test_a_figure_answer_describes_axes_and_attaches_a_small_png() -> None:
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=150)
    try:
        ax.plot([1, 2, 3], label="sales")
        ax.set_title("Sales")
        ax.legend()
        answer = describe("fig", fig)
        assert "title 'Sales'" in answer.text and "legend: sales" in answer.text
        assert len(answer.images) == 1
        png = base64.b64decode(answer.images[0].split(",", 1)[1])
        assert png.startswith(b"\x89PNG") and len(png) <= 100_000
        assert fig.dpi == 150  # the figure itself is unchanged
        assert answer.content_items()[1]["type"] == "inputImage"
        assert describe("ax", ax).images  # an Axes means its figure
    finally:
        plt.close(fig)


def test_a_huge_figure_is_rendered_small_or_not_at_all() -> None:
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(40, 30), dpi=200)
    try:
        answer = describe("fig", fig)
        assert "image:" in answer.text
        if answer.images:
            png = base64.b64decode(answer.images[0].split(",", 1)[1])
            width = int.from_bytes(png[16:20], "big")
            height = int.from_bytes(png[20:24], "big")
            assert width <= 800 and width * height <= 480_000
    finally:
        plt.close(fig)


def test_image_false_skips_rendering() -> None:
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    fig = plt.figure()
    try:
        assert describe("fig", fig, image=False).images == ()
    finally:
        plt.close(fig)


# --- the variables listing --------------------------------------------------------------------


def test_the_variables_listing_has_one_row_per_variable_and_names_imports_at_the_end(
    frame: pd.DataFrame,
) -> None:
    items = [
        ("df", frame),
        ("arr", np.zeros((2, 3))),
        ("np", np),
        ("DataFrame", pd.DataFrame),
        ("sample_function", sample_function),
        ("api_key", "abcdefgh1234"),
        ("n", 5),
    ]
    text = list_variables(items).text
    assert text.startswith("4 variables:")
    assert "- df (pandas.DataFrame, 1,000 rows × 3 columns)" in text
    assert "- arr (numpy.ndarray, shape (2, 3)): dtype float64" in text
    assert f"- api_key (str): {HIDDEN_VALUE}" in text and "abcdefgh1234" not in text
    assert "- n (int): 5" in text
    assert (
        "Imported functions and classes (inspect them by name): DataFrame, sample_function" in text
    )


def test_the_variables_listing_filters_by_glob_and_limits_rows() -> None:
    items = [(f"x{i}", i) for i in range(30)] + [("other", 1)]
    text = list_variables(items, pattern="x*", limit=10).text
    assert text.startswith("30 variables matching 'x*' (showing the first 10")
    assert "- x9 (int)" in text and "- x10 " not in text and "- other" not in text


def test_the_variables_listing_degrades_to_types_when_the_budget_runs_out() -> None:
    items = [("a", 1), ("slow", ReprSleeps()), ("c", 3)]
    started = time.monotonic()
    text = list_variables(items, budget=0.3).text
    assert time.monotonic() - started < 3
    assert "- a (int): 1" in text
    assert "- slow (tests.unit.test_tools_describe.ReprSleeps)" in text
    assert "- c (int)" in text
    assert "time budget of 0.3 s ran out" in text


def test_type_names_are_short_for_well_known_libraries() -> None:
    assert type_name(pd.DataFrame()) == "pandas.DataFrame"
    assert type_name(np.zeros(1)) == "numpy.ndarray"
    assert type_name(3) == "int"


# --- lazy imports -----------------------------------------------------------------------------


def test_describing_never_imports_data_libraries() -> None:
    code = (
        "import sys\n"
        "from codex_notebook.notebook.tools.describe import describe, list_variables\n"
        "from codex_notebook.notebook.tools import execute, kernel_state\n"
        "describe('x', {'a': [1, 2]}); describe('s', 'text'); describe('o', object())\n"
        "list_variables([('x', 1), ('y', [1])])\n"
        "loaded = {m for m in ('pandas', 'numpy', 'polars', 'matplotlib') if m in sys.modules}\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
