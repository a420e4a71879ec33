"""The small pieces under every tool: the time budget, capped answers, namespace lookups."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
import types
from typing import Any

import pytest

from codex_notebook.notebook.tools.answer import Answer, cap, finish
from codex_notebook.notebook.tools.budget import BudgetExceeded, time_limit
from codex_notebook.notebook.tools.namespace import (
    ResolveError,
    resolve,
    user_variables,
    valid_name,
)

# --- the time budget --------------------------------------------------------------------------


def sleep_under_budget(seconds: float, budget: float) -> None:
    with time_limit(budget) as deadline:
        assert deadline.enforced
        time.sleep(seconds)


def test_a_budget_interrupts_slow_python_on_the_main_thread() -> None:
    started = time.monotonic()
    with pytest.raises(BudgetExceeded):
        sleep_under_budget(10, 0.2)
    assert time.monotonic() - started < 2


def test_budget_exceeded_is_not_swallowed_by_except_exception() -> None:
    def user_code() -> None:
        with contextlib.suppress(Exception):  # what careless user code does
            time.sleep(10)

    with pytest.raises(BudgetExceeded), time_limit(0.2):
        user_code()


def test_a_budget_that_is_not_used_up_leaves_no_alarm_behind() -> None:
    handler = signal.getsignal(signal.SIGALRM)
    timer = signal.getitimer(signal.ITIMER_REAL)
    with time_limit(5):
        pass
    assert signal.getsignal(signal.SIGALRM) is handler
    assert signal.getitimer(signal.ITIMER_REAL)[0] == pytest.approx(timer[0], abs=0.5)


def test_an_outer_timer_is_restored_with_its_remaining_time() -> None:
    fired: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda s, f: fired.append(s))
    outer_before = signal.getitimer(signal.ITIMER_REAL)
    try:
        signal.setitimer(signal.ITIMER_REAL, 1.0)
        with pytest.raises(BudgetExceeded), time_limit(0.1):
            time.sleep(5)
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 0 < left < 1.0
        time.sleep(left + 0.2)
        assert fired == [signal.SIGALRM]
    finally:
        signal.signal(signal.SIGALRM, previous)
        signal.setitimer(signal.ITIMER_REAL, *outer_before)


def nested_budgets(outer: float, inner: float) -> None:
    with time_limit(outer), time_limit(inner) as deadline:
        assert not deadline.enforced
        time.sleep(5)


def test_a_budget_inside_a_shorter_budget_defers_to_the_outer_one() -> None:
    with pytest.raises(BudgetExceeded) as caught:
        nested_budgets(0.2, 30)
    assert "0.2 s" in str(caught.value)


def test_off_the_main_thread_a_budget_is_cooperative() -> None:
    seen: dict[str, Any] = {}

    def worker() -> None:
        with time_limit(0.05) as deadline:
            seen["enforced"] = deadline.enforced
            time.sleep(0.1)
            try:
                deadline.check()
            except BudgetExceeded:
                seen["checked"] = True

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(10)
    assert seen == {"enforced": False, "checked": True}


def test_no_budget_means_no_limit() -> None:
    with time_limit(None) as deadline:
        assert deadline.remaining() is None and not deadline.expired()


# --- answers ----------------------------------------------------------------------------------


def test_cap_keeps_head_tail_or_both_and_says_how_much_was_cut() -> None:
    text = "".join(str(i % 10) for i in range(100))
    assert cap(text, 10) == "0123456789\n[… 90 characters cut …]"
    assert cap(text, 10, keep="tail") == "[… 90 characters cut …]\n0123456789"
    assert cap(text, 9, keep="middle") == "012\n[… 91 characters cut …]\n456789"
    assert cap("short", 10) == "short"


def test_finish_scrubs_only_what_it_keeps() -> None:
    seen: list[int] = []

    def scrub(text: str) -> str:
        seen.append(len(text))
        return text

    finish("x" * 10_000_000, 1000, scrub=scrub)
    assert max(seen) < 5_000


def test_an_error_answer_starts_with_error_for_the_model() -> None:
    answer = Answer.error("the kernel is busy")
    assert not answer.ok
    assert answer.content_items() == [{"type": "inputText", "text": "ERROR: the kernel is busy"}]


def test_content_items_carry_at_most_one_image() -> None:
    answer = Answer("t", images=("data:image/png;base64,AA==", "data:image/png;base64,BB=="))
    items = answer.content_items()
    assert [i["type"] for i in items] == ["inputText", "inputImage"]


# --- namespace --------------------------------------------------------------------------------


class Model:
    def __init__(self) -> None:
        self.coef_ = [1.0, 2.0]

    @property
    def broken(self) -> int:
        raise RuntimeError("property failed")


def test_dotted_names_resolve_through_attributes() -> None:
    model = Model()
    assert resolve({"model": model}, "model.coef_") is model.coef_
    assert resolve({"model": model}, " model ") is model


def test_an_unknown_name_suggests_close_matches() -> None:
    with pytest.raises(ResolveError, match=r"no variable named 'dff'.*Did you mean 'df'"):
        resolve({"df": 1}, "dff")


def test_an_unknown_attribute_suggests_close_matches() -> None:
    with pytest.raises(ResolveError, match=r"has no attribute 'coef'.*'coef_'"):
        resolve({"m": Model()}, "m.coef")


def test_a_failing_property_is_reported() -> None:
    with pytest.raises(ResolveError, match="RuntimeError: property failed"):
        resolve({"m": Model()}, "m.broken")


@pytest.mark.parametrize("name", ["df.__class__", "f.__globals__", "x.__dict__"])
def test_dunder_segments_are_refused(name: str) -> None:
    with pytest.raises(ResolveError, match="dunder"):
        resolve({"df": 1, "f": len, "x": Model()}, name)


@pytest.mark.parametrize("name", ["df[0]", "f()", "a + b", "import os", "x.y.", "1x"])
def test_expressions_are_refused(name: str) -> None:
    assert not valid_name(name)
    with pytest.raises(ResolveError, match="not a variable name"):
        resolve({}, name)


def test_a_module_attribute_lookup_never_imports() -> None:
    imported: list[str] = []
    lazy = types.ModuleType("lazy")

    def module_getattr(name: str) -> Any:
        imported.append(name)
        raise AttributeError(name)

    lazy.__getattr__ = module_getattr  # type: ignore[method-assign]
    lazy.loaded = 5  # type: ignore[attr-defined]
    assert resolve({"lazy": lazy}, "lazy.loaded") == 5
    with pytest.raises(ResolveError, match="never imported are not imported"):
        resolve({"lazy": lazy}, "lazy.submodule")
    assert imported == []


def test_user_variables_follow_ipython_who_rules() -> None:
    hidden_value = object()

    shell = types.SimpleNamespace(
        user_ns_hidden={"In": hidden_value, "exit": hidden_value},
        user_ns={
            "In": hidden_value,
            "exit": "rebound by the user",
            "_": 1,
            "_private": 2,
            "df": 3,
        },
    )
    assert user_variables(shell) == {"exit": "rebound by the user", "df": 3}
