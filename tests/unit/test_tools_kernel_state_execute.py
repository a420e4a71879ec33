"""``cells``, ``last_error`` and ``run_python`` on a real (plain) IPython ``InteractiveShell``.

The same behaviours are checked in a real ipykernel in tests/kernel/test_tools_kernel.py.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell

from codex_notebook.notebook.tools.calls import scrubber_for
from codex_notebook.notebook.tools.execute import run_code
from codex_notebook.notebook.tools.kernel_state import (
    CellWatcher,
    cells_answer,
    find_last_error,
    format_error,
    last_error_answer,
    recent_cells,
)

OPENAI = "sk-proj-Ab3dEf9hIj2kLm5nOp8qRs1tUv4wXy7zAb3dEf9hIj2k"


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()
    saved = {name: getattr(sys, name) for name in ("last_type", "last_value") if hasattr(sys, name)}
    try:
        yield ip
    finally:
        InteractiveShell.clear_instance()
        for name in ("last_type", "last_value", "last_traceback", "last_exc"):
            if hasattr(sys, name):
                delattr(sys, name)
        for name, value in saved.items():
            setattr(sys, name, value)


@pytest.fixture
def watcher(shell: InteractiveShell) -> Iterator[CellWatcher]:
    w = CellWatcher(shell).install()
    yield w
    w.uninstall()


def run(shell: InteractiveShell, code: str) -> None:
    shell.run_cell(code, store_history=True)


# --- cells ------------------------------------------------------------------------------------


def test_cells_lists_recent_sources_and_results_oldest_first(shell: InteractiveShell) -> None:
    run(shell, "a = 40")
    run(shell, "a + 2")
    run(shell, "print('printed')")
    text = cells_answer(shell).text
    assert "Cells [1] to [3] of 3" in text
    assert text.index("In [1]:\na = 40") < text.index("In [2]:\na + 2")
    assert "Out[2]:\n42" in text
    assert "printed output and displays are not kept" in text


def test_cells_shows_only_the_last_n(shell: InteractiveShell) -> None:
    for i in range(8):
        run(shell, f"x{i} = {i}")
    records = recent_cells(shell, last=3)
    assert [r.execution_count for r in records] == [6, 7, 8]
    assert records[-1].source == "x7 = 7"


def test_a_codex_cell_shows_its_options_but_not_its_prompt(shell: InteractiveShell) -> None:
    run(shell, "%%codex -t main --wait\nplease fix the secret thing")
    text = cells_answer(shell).text
    assert "%%codex -t main --wait" in text
    assert "please fix" not in text and "prompt omitted" in text


def test_a_codex_lookalike_cell_is_shown_whole(shell: InteractiveShell) -> None:
    run(shell, "%%codexfoo\nbody stays")
    assert "body stays" in cells_answer(shell).text


def test_cells_scrub_secrets_in_sources_and_results(shell: InteractiveShell) -> None:
    run(shell, f"api = '{OPENAI}'\napi")
    text = cells_answer(shell).text
    assert OPENAI[:10] not in text and "[REDACTED]" in text


def test_the_running_cell_is_marked(shell: InteractiveShell, watcher: CellWatcher) -> None:
    run(shell, "x = 1")
    shell.user_ns["probe"] = lambda: cells_answer(shell, watcher=watcher).text
    run(shell, "seen = probe()")
    assert "In [2] (running now):\nseen = probe()" in shell.user_ns["seen"]
    assert not watcher.running


def test_a_cell_that_runs_cells_is_still_the_running_one_after_them(
    shell: InteractiveShell, watcher: CellWatcher
) -> None:
    shell.user_ns["watcher"] = watcher
    outer = shell.execution_count
    run(
        shell,
        "get_ipython().run_cell('x = 1')\n"
        "get_ipython().run_cell('')\n"  # an empty cell: post_run_cell without pre_run_cell
        "seen = watcher.running_count()",
    )
    assert shell.user_ns["seen"] == outer
    assert not watcher.running


def test_cells_before_any_cell_says_so(shell: InteractiveShell) -> None:
    assert cells_answer(shell).text == "No cells have run in this kernel yet."


def test_cells_stay_bounded_for_huge_sources_and_results(shell: InteractiveShell) -> None:
    run(shell, "big = 'x' * 100_000\nbig")
    text = cells_answer(shell).text
    assert len(text) < 3_000 and "characters cut" in text


# --- last error -------------------------------------------------------------------------------


def test_last_error_names_the_cell_its_source_and_a_plain_traceback(
    shell: InteractiveShell, watcher: CellWatcher
) -> None:
    run(shell, "def f(v):\n    return 1 / v")
    run(shell, "f(0)")
    run(shell, "ok = 1")
    text = last_error_answer(shell, watcher=watcher).text
    assert text.startswith("ZeroDivisionError: division by zero")
    assert "Raised by cell [2]; 1 cell ran after it." in text
    assert "Cell source:\nf(0)" in text
    assert "return 1 / v" in text  # the traceback reaches into cell 1's function
    assert "\x1b[" not in text


def test_a_syntax_error_is_a_last_error(shell: InteractiveShell, watcher: CellWatcher) -> None:
    run(shell, "def broken(:\n    pass")
    record = watcher.last_error
    assert record is not None and isinstance(record.exception, SyntaxError)
    assert record.execution_count == 1
    assert "SyntaxError" in last_error_answer(shell, watcher=watcher).text


def test_a_rerun_of_the_same_notebook_cell_marks_the_error_fixed(
    shell: InteractiveShell, watcher: CellWatcher
) -> None:
    shell.run_cell("1/0", store_history=True, cell_id="cell-a")
    shell.run_cell("1/1", store_history=True, cell_id="cell-a")
    text = last_error_answer(shell, watcher=watcher).text
    assert "ran again without error as [2]" in text


def test_without_the_watcher_sys_last_value_and_the_file_map_find_the_cell(
    shell: InteractiveShell,
) -> None:
    run(shell, "x = 1")
    run(shell, "raise KeyError('missing')")
    record = find_last_error(shell)
    assert record is not None and record.execution_count == 2
    assert record.source == "raise KeyError('missing')"
    error = format_error(shell, record)
    assert error.type_name == "KeyError" and error.message == "'missing'"


def test_no_error_yet_says_so(shell: InteractiveShell, watcher: CellWatcher) -> None:
    run(shell, "x = 1")
    assert last_error_answer(shell, watcher=watcher).text.startswith("No cell has raised")


def test_a_secret_in_the_failing_cell_is_scrubbed(
    shell: InteractiveShell, watcher: CellWatcher
) -> None:
    run(shell, f"key = '{OPENAI}'\nraise ValueError(key)")
    text = last_error_answer(shell, watcher=watcher).text
    assert OPENAI[:10] not in text


# --- run_python -------------------------------------------------------------------------------


def test_run_code_captures_stdout_stderr_and_the_last_value(shell: InteractiveShell) -> None:
    outcome = run_code(shell, "import sys\nprint('out')\nprint('err', file=sys.stderr)\n6 * 7")
    assert outcome.status == "ok"
    assert outcome.stdout == "out\n" and outcome.stderr == "err\n"
    assert outcome.result == "42"


def test_run_code_leaves_history_counts_underscore_and_hooks_alone(
    shell: InteractiveShell, watcher: CellWatcher
) -> None:
    run(shell, "10")
    before = (shell.execution_count, dict(shell.user_ns["Out"]), shell.user_ns["_"])
    history = list(shell.history_manager.input_hist_raw)
    events: list[str] = []
    shell.events.register("post_run_cell", lambda result: events.append("post"))
    outcome = run_code(shell, "1 / 0")
    run_code(shell, "99")
    assert outcome.status == "error"
    assert (shell.execution_count, shell.user_ns["Out"], shell.user_ns["_"]) == before
    assert shell.history_manager.input_hist_raw == history
    assert events == []
    assert watcher.last_error is None  # the agent's error is not "the last error"
    assert not hasattr(sys, "last_value") or not isinstance(sys.last_value, ZeroDivisionError)


def test_run_code_reports_created_changed_and_deleted_names(shell: InteractiveShell) -> None:
    run(shell, "keep = [1]\nswap = 1\ngone = 2")
    outcome = run_code(shell, "new = 1\nswap = 2\ndel gone\nkeep.append(2)")
    assert (outcome.created, outcome.changed, outcome.deleted) == (("new",), ("swap",), ("gone",))
    assert outcome.changes() == "created `new`, changed `swap`, deleted `gone`"


def test_run_code_error_gives_a_plain_traceback_of_the_agent_code(shell: InteractiveShell) -> None:
    outcome = run_code(shell, "def g():\n    raise ValueError('bad value')\ng()")
    assert outcome.status == "error"
    assert outcome.error == "ValueError: bad value"
    assert outcome.traceback is not None
    assert "raise ValueError('bad value')" in outcome.traceback
    assert "run_python #" in outcome.traceback
    assert "execute.py" not in outcome.traceback and "\x1b[" not in outcome.traceback
    assert outcome.answer().text.startswith("ERROR: the code raised an exception")


def test_run_code_syntax_error_is_reported(shell: InteractiveShell) -> None:
    outcome = run_code(shell, "def (:")
    assert outcome.status == "error" and outcome.error is not None
    assert "SyntaxError" in outcome.error


def test_run_code_refuses_top_level_await_with_a_reason(shell: InteractiveShell) -> None:
    outcome = run_code(shell, "import asyncio\nawait asyncio.sleep(0)")
    assert outcome.error is not None and "top-level await is not supported" in outcome.error


def test_run_code_understands_ipython_syntax(shell: InteractiveShell) -> None:
    outcome = run_code(shell, "x = 5\n%time y = x + 1\ny")
    assert outcome.status == "ok" and outcome.result == "6"
    assert "Wall time" in outcome.stdout


def test_sys_exit_in_agent_code_does_not_end_anything(shell: InteractiveShell) -> None:
    outcome = run_code(shell, "import sys\nsys.exit(3)")
    assert outcome.status == "error" and outcome.error is not None
    assert "SystemExit(3)" in outcome.error
    assert not shell.exit_now


def test_run_code_stops_at_its_time_budget(shell: InteractiveShell) -> None:
    outcome = run_code(shell, "import time\nwhile True:\n    time.sleep(0.01)", budget=0.3)
    assert outcome.status == "timeout"
    assert outcome.error is not None and "stopped after 0.3 s" in outcome.error
    assert outcome.traceback is not None and "budget.py" not in outcome.traceback
    assert "time.sleep(0.01)" in outcome.traceback


def test_run_code_captures_displays_as_text(shell: InteractiveShell) -> None:
    outcome = run_code(shell, "from IPython.display import display\ndisplay({'a': 1})")
    assert outcome.displays == ("{'a': 1}",)


def test_run_code_keeps_huge_output_bounded(shell: InteractiveShell) -> None:
    outcome = run_code(shell, "for i in range(200_000):\n    print('line', i)")
    assert "line 199999" in outcome.stdout  # the end is kept
    assert len(outcome.stdout) < 2_200 and "characters cut" in outcome.stdout
    assert len(outcome.answer().text) <= 6_100


def test_run_code_scrubs_secrets_it_prints(shell: InteractiveShell) -> None:
    outcome = run_code(
        shell, f"db_password = 'opensesame-42'\nprint('pw is', db_password, '{OPENAI}')"
    )
    assert "opensesame-42" not in outcome.stdout and OPENAI[:10] not in outcome.stdout


def test_run_code_scrubs_a_secret_it_printed_then_deleted(shell: InteractiveShell) -> None:
    run(shell, "db_password = 'opensesame-42'")
    outcome = run_code(shell, "print(db_password)\ndel db_password")
    assert "opensesame-42" not in outcome.stdout


def test_run_code_scrubs_a_value_read_out_of_a_credential_named_dict(
    shell: InteractiveShell,
) -> None:
    run(shell, "credentials = {'github': 'plain-looking-value-42'}")
    outcome = run_code(shell, "print(credentials['github'])\ncredentials['github']")
    assert "plain-looking-value-42" not in outcome.answer().text


def test_cells_scrub_a_value_defined_in_a_credential_named_dict(shell: InteractiveShell) -> None:
    run(shell, "credentials = {'github': 'plain-looking-value-42'}")
    run(shell, "x = credentials['github']\nx")
    text = cells_answer(shell, scrubber=scrubber_for(shell)).text
    assert "plain-looking-value-42" not in text


def test_figures_opened_by_agent_code_are_described_and_closed(shell: InteractiveShell) -> None:
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    outcome = run_code(
        shell, "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.title('trend')"
    )
    assert outcome.status == "ok"
    assert len(outcome.figures) == 1 and "title 'trend'" in outcome.figures[0]
    assert len(outcome.images) == 1 and outcome.images[0].startswith("data:image/png;base64,")
    assert set(plt.get_fignums()) == before


def test_functions_defined_by_agent_code_have_source(shell: InteractiveShell) -> None:
    run_code(shell, "def helper(v):\n    return v + 1")
    import inspect

    assert "return v + 1" in inspect.getsource(shell.user_ns["helper"])


# --- the tool entry points --------------------------------------------------------------------


def test_variables_lists_the_users_names_only(shell: InteractiveShell) -> None:
    from codex_notebook.notebook.tools import calls

    run(shell, "import math\nx = 1\nname = 'ann'")
    text = calls.variables(shell).text
    assert "- x (int): 1" in text and "- name (str, len 3): 'ann'" in text
    assert "math" not in text and "- In " not in text and "- Out " not in text


def test_variables_coerces_the_models_arguments(shell: InteractiveShell) -> None:
    from codex_notebook.notebook.tools import calls

    run(shell, "a1 = 1\na2 = 2\nb1 = 3")
    assert "showing the first 1" in calls.variables(shell, pattern="a*", limit="1").text
    assert "- a1 (int)" in calls.variables(shell, limit="lots").text
    assert calls.variables(shell, pattern=5).text.startswith("ERROR:")


def test_inspect_an_unknown_name_is_an_error_answer_with_a_suggestion(
    shell: InteractiveShell,
) -> None:
    from codex_notebook.notebook.tools import calls

    run(shell, "frame = 1")
    answer = calls.inspect_name(shell, "fram")
    assert not answer.ok and answer.text.startswith("ERROR: there is no variable named 'fram'")
    assert "'frame'" in answer.text
    assert calls.inspect_name(shell, None).text.startswith("ERROR:")


def test_inspect_resolves_dotted_names(shell: InteractiveShell) -> None:
    from codex_notebook.notebook.tools import calls

    run(shell, "class M:\n    pass\nm = M()\nm.coef_ = [0.5, 1.5]")
    assert "m.coef_: list — 2 items" in calls.inspect_name(shell, "m.coef_").text


def test_a_secret_value_held_elsewhere_is_scrubbed_from_inspect(shell: InteractiveShell) -> None:
    from codex_notebook.notebook.tools import calls

    run(shell, "my_token = 'plain-but-secret-99'\nnotes = {'copied': my_token}")
    text = calls.inspect_name(shell, "notes").text
    assert "plain-but-secret-99" not in text and "[REDACTED]" in text


def test_run_python_refuses_non_string_code(shell: InteractiveShell) -> None:
    from codex_notebook.notebook.tools import calls

    outcome = calls.run_python(shell, ["print(1)"])
    assert outcome.status == "error" and outcome.answer().text.startswith("ERROR:")


def test_cells_and_last_error_entry_points(shell: InteractiveShell, watcher: CellWatcher) -> None:
    from codex_notebook.notebook.tools import calls

    run(shell, "y = 2")
    run(shell, "y.nope")
    assert "In [1]:\ny = 2" in calls.cells(shell, last="2", watcher=watcher).text
    assert calls.last_error(shell, watcher=watcher).text.startswith("AttributeError")


def test_agent_code_cannot_prompt_for_input(shell: InteractiveShell) -> None:
    import builtins
    import getpass

    original_input, original_getpass = builtins.input, getpass.getpass
    outcome = run_code(shell, "name = input('your name? ')")
    assert outcome.status == "error" and outcome.error is not None
    assert "cannot prompt the user" in outcome.error
    assert run_code(shell, "import getpass\ngetpass.getpass()").status == "error"
    assert builtins.input is original_input and getpass.getpass is original_getpass
