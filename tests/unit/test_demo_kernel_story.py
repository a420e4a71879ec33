"""The demo model's kernel-tool stories, and how it reads the notebook tools' answers.

Request bodies are shaped like codex's (measured on 0.163.0 and 0.171.0): the ``notebook``
namespace entry in ``tools``, and each call as a ``function_call`` with ``namespace`` followed by
its ``function_call_output``. :func:`_play` plays a whole turn the way codex would, answering
each call from a scripted notebook, so every test checks the sequence of calls and the answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from codex_notebook.demo.kernel_story import (
    MAX_CALLS_PER_TURN,
    offered_tools,
    proposed_fix,
    rename_variable,
    replace_string,
    story_for,
)
from codex_notebook.demo.script import (
    HttpFailure,
    TextAnswer,
    ToolCall,
    markdown_answer,
    parse_directives,
    reply_for_request,
    script_for,
)
from codex_notebook.demo.server import SseEvent, response_events
from codex_notebook.demo.tool_answers import (
    ErrorFacts,
    code_blocks,
    error_facts,
    failing_line,
    frame_facts,
    inline_code,
    is_refusal,
    pick_frame,
    variables,
)

ALL_TOOLS = ("cells", "inspect", "last_error", "propose_cell", "run_python", "variables")

# A KeyError as IPython prints it (colours off), raised inside pandas.
PANDAS_FRAME = (
    "File ~/.venv/lib/python3.11/site-packages/pandas/core/frame.py:4102, "
    "in DataFrame.__getitem__(self, key)"
)
KEY_ERROR_TRACEBACK = f"""\
---------------------------------------------------------------------------
KeyError                                  Traceback (most recent call last)
Cell In[4], line 2
      1 sales = load()
----> 2 total = df['prcie'].sum()

{PANDAS_FRAME}
   4100 if self.columns.nlevels > 1:
   4101     return self._getitem_multilevel(key)
-> 4102 indexer = self.columns.get_loc(key)

KeyError: 'prcie'
"""
KEY_ERROR_ANSWER = f"""KeyError: 'prcie'
The failing cell [4]:
```python
sales = load()
total = df['prcie'].sum()
```
Traceback:
{KEY_ERROR_TRACEBACK}"""
VARIABLES_ANSWER = (
    "df: DataFrame (3, 3) columns=[date, price, qty]\n"
    "sales: list len=12\n"
    "x: int = 42\n"
    "load: function load()"
)
INSPECT_ANSWER = """df: pandas.DataFrame
shape: (3, 3)
dtypes:
  date     object
  price   float64
  qty       int64
head:
```
         date  price  qty
0  2024-01-01    1.5    3
```"""

Answers = Mapping[str, str] | Callable[[str, dict[str, Any]], str]


def _tools_entry(names: tuple[str, ...] = ALL_TOOLS) -> dict[str, Any]:
    """The ``tools`` entry codex sends for the notebook namespace (as measured)."""
    return {
        "type": "namespace",
        "name": "notebook",
        "description": "The user's live Jupyter kernel.",
        "tools": [
            {
                "type": "function",
                "name": name,
                "description": name,
                "strict": False,
                "parameters": {"type": "object", "properties": {}},
            }
            for name in sorted(names)
        ],
    }


def _user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def _assistant(text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text}],
    }


def _body(items: list[dict[str, Any]], tools: tuple[str, ...] | None = ALL_TOOLS) -> dict[str, Any]:
    context = _user("<environment_context>\n  <cwd>/w</cwd>\n</environment_context>")
    listed: list[dict[str, Any]] = [{"type": "function", "name": "exec_command"}]
    if tools is not None:
        listed.append(_tools_entry(tools))
    return {"model": "mock-model", "input": [context, *items], "tools": listed}


def _play(
    prompt: str,
    answers: Answers,
    *,
    history: list[dict[str, Any]] | None = None,
    tools: tuple[str, ...] | None = ALL_TOOLS,
) -> tuple[list[tuple[str, dict[str, Any]]], TextAnswer, list[dict[str, Any]]]:
    """Play one turn: (calls made, final answer, the items for the next turn's history)."""
    items = [*(history or []), _user(prompt)]
    calls: list[tuple[str, dict[str, Any]]] = []
    for step in range(MAX_CALLS_PER_TURN + 2):
        reply = reply_for_request(_body(items, tools))
        if isinstance(reply, TextAnswer):
            return calls, reply, [*items, _assistant(reply.text)]
        assert isinstance(reply, ToolCall), reply
        assert reply.namespace == "notebook"
        args = reply.parsed_arguments
        calls.append((reply.name, args))
        output = answers(reply.name, args) if callable(answers) else answers[reply.name]
        call_id = f"call_{len(items)}_{step}"
        items += [
            {
                "type": "function_call",
                "name": reply.name,
                "namespace": "notebook",
                "arguments": reply.arguments,
                "call_id": call_id,
            },
            {"type": "function_call_output", "call_id": call_id, "output": output},
        ]
    pytest.fail("the story never answered")


NOTEBOOK = {
    "variables": VARIABLES_ANSWER,
    "inspect": INSPECT_ANSWER,
    "last_error": KEY_ERROR_ANSWER,
    "cells": "(no cells)",
    "propose_cell": "The proposal is shown to the user under the cell.",
    "run_python": "        price\ncount  3.000\nmean   1.500",
}


# --- what codex sends ---------------------------------------------------------------------------


def test_offered_tools_reads_the_notebook_namespace_entry() -> None:
    assert offered_tools(_body([])) == frozenset(ALL_TOOLS)
    assert offered_tools(_body([], tools=None)) == frozenset()


def test_tool_call_event_carries_the_namespace() -> None:
    call = ToolCall("variables", "{}", namespace="notebook")
    (item,) = [
        e.data["item"]
        for e in response_events(call)
        if isinstance(e, SseEvent) and e.type == "response.output_item.done"
    ]
    assert (item["type"], item["name"], item["namespace"]) == (
        "function_call",
        "variables",
        "notebook",
    )
    assert call.qualified_name == "notebook.variables"


def test_exec_command_call_has_no_namespace_field() -> None:
    (item,) = [
        e.data["item"]
        for e in response_events(ToolCall("exec_command", "{}"))
        if isinstance(e, SseEvent) and e.type == "response.output_item.done"
    ]
    assert "namespace" not in item


# --- choosing a story ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "story"),
    [
        ("Why did my cell fail?", "fix"),
        ("fix it please", "fix"),
        ("what is this traceback about", "fix"),
        ("What data do I have?", "data"),
        ("show me my variables", "data"),
        ("describe my data frame", "data"),
        ("run `df.head()` on my data", "run"),
        ("compute the mean price", "run"),
        ("run the numbers", "run"),
        ("run a command", None),
        ("list files", None),
        ("please fail now", None),
        ("What is a Jupyter kernel?", None),
    ],
)
def test_story_is_chosen_from_the_prompt(prompt: str, story: str | None) -> None:
    assert story_for(prompt) == story


@pytest.mark.parametrize(
    "prompt",
    [
        "What is a Jupyter kernel? Explain it with a small table.",
        "Thanks! Now say the same thing in one sentence.",
        "Show me a short Python function I could use in this notebook.",
        "Give me a slow tour of what this notebook can do.",
        "Thanks. What should I try first?",
        "Compare a notebook and a script in a small table.",
        "Suggest checks for sales.csv with its 3 columns: date, price, qty.",
        "Which of those checks matters most?",
        "Please list the files in your workspace.",
        "Create a file with a small greeting function.",
        "Install the demo package for me, please.",
    ],
)
def test_the_other_demo_prompts_keep_their_demo_when_tools_are_offered(prompt: str) -> None:
    assert story_for(prompt) is None
    with_tools = reply_for_request(_body([_user(prompt)]))
    without = reply_for_request(_body([_user(prompt)], tools=None))
    assert type(with_tools) is type(without)
    assert with_tools.reason == without.reason


def test_without_the_notebook_tools_no_story_starts() -> None:
    reply = reply_for_request(_body([_user("What data do I have?")], tools=None))
    assert isinstance(reply, TextAnswer)
    assert reply.text == markdown_answer("What data do I have?")


def test_shell_demos_still_work_when_the_tools_are_offered() -> None:
    reply = reply_for_request(_body([_user("run a command")]))
    assert isinstance(reply, ToolCall)
    assert (reply.name, reply.namespace) == ("exec_command", None)


def test_the_failure_demo_still_fails_when_the_tools_are_offered() -> None:
    assert isinstance(reply_for_request(_body([_user("please fail")])), HttpFailure)


def test_default_answer_lists_the_kernel_prompts_only_with_tools() -> None:
    with_tools = reply_for_request(_body([_user("hello")]))
    without = reply_for_request(_body([_user("hello")], tools=None))
    assert isinstance(with_tools, TextAnswer)
    assert isinstance(without, TextAnswer)
    assert "why did my cell fail?" in with_tools.text
    assert "why did my cell fail?" not in without.text


# --- data ----------------------------------------------------------------------------------------


def test_data_story_lists_variables_then_inspects_the_frame() -> None:
    calls, answer, _ = _play("What data do I have?", NOTEBOOK)
    assert calls == [("variables", {}), ("inspect", {"name": "df"})]
    assert answer.reason == "story:data"
    assert "**`df`**" in answer.text
    assert "- **shape:** 3 rows × 3 columns" in answer.text
    assert "- **columns:** `date`, `price`, `qty`" in answer.text
    assert "0  2024-01-01    1.5    3" in answer.text


def test_data_story_without_a_table_says_so() -> None:
    answers = {**NOTEBOOK, "variables": "x: int = 1\nname: str = 'a'"}
    calls, answer, _ = _play("what data do I have", answers)
    assert calls == [("variables", {})]
    assert "none of them looks like a table" in answer.text


def test_data_story_quotes_a_tool_error() -> None:
    answers = {**NOTEBOOK, "variables": "ERROR: the kernel is busy; try again when it is idle"}
    calls, answer, _ = _play("what data do I have", answers)
    assert calls == [("variables", {})]
    assert "ERROR: the kernel is busy" in answer.text


def test_data_story_quotes_an_inspect_answer_it_cannot_read() -> None:
    answers = {**NOTEBOOK, "inspect": "a frame of some sort"}
    _, answer, _ = _play("what data do I have", answers)
    assert "I found no shape or column list" in answer.text
    assert "a frame of some sort" in answer.text


# --- fix -----------------------------------------------------------------------------------------


def test_fix_story_inspects_the_frame_and_proposes_the_right_column() -> None:
    calls, answer, _ = _play("Why did my cell fail?", NOTEBOOK)
    assert [name for name, _ in calls] == ["last_error", "inspect", "propose_cell"]
    assert calls[1] == ("inspect", {"name": "df"})
    proposal = calls[2][1]
    assert proposal["code"] == "sales = load()\ntotal = df['price'].sum()\n"
    assert "'prcie'" in proposal["explanation"] and "'price'" in proposal["explanation"]
    assert "`KeyError: 'prcie'`" in answer.text
    assert "I proposed the fixed cell" in answer.text


def test_fix_story_reuses_columns_learnt_in_an_earlier_turn() -> None:
    _, _, history = _play("What data do I have?", NOTEBOOK)
    calls, _, _ = _play("Why did my cell fail?", NOTEBOOK, history=history)
    assert [name for name, _ in calls] == ["last_error", "propose_cell"]


def test_fix_story_renames_a_misspelt_variable() -> None:
    answers = {
        **NOTEBOOK,
        "last_error": "NameError: name 'dff' is not defined\n----> 1 dff.head()",
        "cells": "In [3]: dff.head()\nOut[3]: (nothing)",
    }
    calls, answer, _ = _play("fix it", answers)
    assert [name for name, _ in calls] == ["last_error", "cells", "variables", "propose_cell"]
    assert calls[-1][1]["code"] == "df.head()\n"
    assert "`dff` is not defined; the notebook has `df`." in answer.text


def test_fix_story_proposes_diagnostics_for_other_errors() -> None:
    answers = {
        **NOTEBOOK,
        "last_error": (
            "ZeroDivisionError: division by zero\nCell In[2], line 2\n----> 2 r = total / a"
        ),
        "cells": "```python\na = 0\nr = total / a\n```",
    }
    calls, answer, _ = _play("why did it fail?", answers)
    assert [name for name, _ in calls] == ["last_error", "cells", "propose_cell"]
    code = calls[-1][1]["code"]
    assert code.startswith("# Diagnostics for ZeroDivisionError: division by zero\n")
    assert "for _name in ('r', 'total', 'a'):" in code
    compile(code, "<proposal>", "exec")
    assert "a cell that prints diagnostics" in answer.text


def test_fix_story_without_an_error_says_there_is_nothing_to_fix() -> None:
    answers = {**NOTEBOOK, "last_error": "No cell has raised an exception in this kernel yet."}
    calls, answer, _ = _play("fix my cell", answers)
    assert calls == [("last_error", {})]
    assert "reports no exception" in answer.text


def test_fix_story_without_propose_cell_puts_the_code_in_the_answer() -> None:
    tools = ("last_error", "inspect", "variables")
    calls, answer, _ = _play("fix my cell", NOTEBOOK, tools=tools)
    assert [name for name, _ in calls] == ["last_error", "inspect"]
    assert "```python\nsales = load()\ntotal = df['price'].sum()\n```" in answer.text


def test_fix_story_shows_the_code_when_the_proposal_was_refused() -> None:
    answers = {**NOTEBOOK, "propose_cell": "ERROR: propose_cell is turned off (--tools read)"}
    _, answer, _ = _play("fix my cell", answers)
    assert "did not take the proposal (ERROR: propose_cell is turned off" in answer.text
    assert "total = df['price'].sum()" in answer.text


# --- run -----------------------------------------------------------------------------------------


def test_run_story_runs_the_prompts_inline_code() -> None:
    calls, answer, _ = _play("run `df.head()`", NOTEBOOK)
    assert calls == [("run_python", {"code": "df.head()"})]
    assert "It ran in your kernel" in answer.text
    assert "mean   1.500" in answer.text


def test_run_story_describes_the_frame_it_finds() -> None:
    calls, _, _ = _play("run a quick summary", NOTEBOOK)
    assert calls == [("variables", {}), ("run_python", {"code": "df.describe()"})]


def test_run_story_computes_a_named_column_when_it_knows_the_columns() -> None:
    _, _, history = _play("What data do I have?", NOTEBOOK)
    calls, _, _ = _play("compute the average price", NOTEBOOK, history=history)
    assert calls == [("run_python", {"code": "df['price'].mean()"})]


def test_run_story_says_when_the_user_declined() -> None:
    answers = {**NOTEBOOK, "run_python": "ERROR: the user declined to run this code."}
    _, answer, _ = _play("run `df.head()`", answers)
    assert answer.text.startswith("## Nothing ran")
    assert "the user declined" in answer.text
    assert "Your kernel is unchanged." in answer.text


def test_run_story_reports_the_exception() -> None:
    answers = {**NOTEBOOK, "run_python": "Traceback (most recent call last):\nValueError: bad"}
    _, answer, _ = _play("run `int('x')`", answers)
    assert "It raised `ValueError: bad`" in answer.text


def test_a_list_of_output_parts_is_read_as_text() -> None:
    calls, answer, _ = _play(
        "run `1 + 1`", lambda tool, args: [{"type": "input_text", "text": "2"}]
    )  # type: ignore[arg-type,return-value]
    assert calls == [("run_python", {"code": "1 + 1"})]
    assert "```text\n2\n```" in answer.text


def test_a_story_that_keeps_calling_is_cut_off() -> None:
    items: list[dict[str, Any]] = [_user("fix it")]
    for n in range(MAX_CALLS_PER_TURN):
        items += [
            {
                "type": "function_call",
                "name": "cells",
                "namespace": "notebook",
                "arguments": "{}",
                "call_id": f"c{n}",
            },
            {"type": "function_call_output", "call_id": f"c{n}", "output": "nothing"},
        ]
    reply = reply_for_request(_body(items))
    assert isinstance(reply, TextAnswer)
    assert reply.text.startswith("## Stopping here")


# --- NBTOOL directive --------------------------------------------------------------------------


def test_nbtool_directives_are_parsed_in_order_with_args() -> None:
    d = parse_directives('NBTOOL:variables NBTOOL:inspect ARGS:{"name": "df"} done')
    assert d.nbtools == (("variables", {}), ("inspect", {"name": "df"}))


def test_nbtool_calls_each_tool_then_quotes_the_outputs() -> None:
    calls, answer, _ = _play('NBTOOL:variables NBTOOL:inspect ARGS:{"name": "df"}', NOTEBOOK)
    assert calls == [("variables", {}), ("inspect", {"name": "df"})]
    assert answer.reason == "directive:NBTOOL"
    assert "`notebook.variables` {} answered:" in answer.text
    assert '`notebook.inspect` {"name": "df"} answered:' in answer.text
    assert "x: int = 42" in answer.text


def test_nbtool_is_called_even_when_the_tool_is_not_offered() -> None:
    reply = script_for("NBTOOL:cells")
    assert isinstance(reply, ToolCall)
    assert (reply.namespace, reply.name, reply.arguments) == ("notebook", "cells", "{}")


@pytest.mark.parametrize("args", ["ARGS:{oops", "ARGS:[1, 2]"])
def test_nbtool_with_bad_args_answers_why(args: str) -> None:
    reply = script_for(f"NBTOOL:inspect {args}")
    assert isinstance(reply, TextAnswer)
    assert reply.text.startswith(
        "The NBTOOL directive could not be followed: ARGS of NBTOOL:inspect"
    )


def test_nbtool_token_is_not_mistaken_for_tool() -> None:
    d = parse_directives("NBTOOL:variables")
    assert d.tool is None


def test_fail_beats_nbtool() -> None:
    assert isinstance(script_for("NBTOOL:variables FAIL"), HttpFailure)


# --- reading tool answers -------------------------------------------------------------------------


def test_variables_reads_name_type_lines() -> None:
    found = variables(VARIABLES_ANSWER)
    assert [v.name for v in found] == ["df", "sales", "x", "load"]
    assert found[0].description.startswith("DataFrame (3, 3)")


def test_variables_reads_a_markdown_table() -> None:
    table = (
        "| name | type | shape |\n|---|---|---|\n"
        "| `df` | DataFrame | (1000, 5) |\n| `arr` | ndarray | (3,) |\n| _hidden | int | |"
    )
    assert [(v.name, v.description) for v in variables(table)] == [
        ("df", "DataFrame (1000, 5)"),
        ("arr", "ndarray (3,)"),
    ]


def test_variables_reads_json() -> None:
    doc = json.dumps({"variables": [{"name": "df", "type": "DataFrame", "shape": [4, 2]}]})
    (var,) = variables(doc)
    assert (var.name, var.frame_score, var.size) == ("df", 100, 4)


def test_pick_frame_prefers_frames_then_more_rows() -> None:
    found = variables(
        "arr: ndarray (10, 2)\nsmall: DataFrame (3, 2)\nbig: DataFrame (1000, 9)\nf: function"
    )
    frame = pick_frame(found)
    assert frame is not None and frame.name == "big"
    assert pick_frame(variables("x: int = 1\nf: function")) is None


@pytest.mark.parametrize(
    "answer",
    [
        INSPECT_ANSWER,
        "DataFrame with 3 rows × 3 columns\ncolumns: ['date', 'price', 'qty']",
        "    date  price  qty\n0  ...\n\n[3 rows x 3 columns]\n"
        "Index(['date', 'price', 'qty'], dtype='object')",
        json.dumps(
            {"shape": [3, 3], "dtypes": {"date": "object", "price": "float64", "qty": "int64"}}
        ),
    ],
)
def test_frame_facts_reads_shape_and_columns(answer: str) -> None:
    facts = frame_facts(answer)
    assert facts.shape == (3, 3)
    assert facts.columns == ("date", "price", "qty")


def test_frame_facts_reads_bulleted_dtypes() -> None:
    facts = frame_facts(
        "shape: 1,000 x 2\ncolumns:\n- `price`: float64\n- `when`: datetime64[ns]\n"
    )
    assert facts.shape == (1000, 2)
    assert facts.columns == ("price", "when")


def test_frame_facts_unknown_when_nothing_matches() -> None:
    assert not frame_facts("something else entirely").known


def test_error_facts_from_an_ipython_traceback() -> None:
    facts = error_facts(KEY_ERROR_TRACEBACK)
    assert facts == ErrorFacts("KeyError", "'prcie'", "total = df['prcie'].sum()")
    assert facts is not None and facts.key == "prcie"


def test_error_facts_reads_python_suggestions() -> None:
    facts = error_facts("NameError: name 'dff' is not defined. Did you mean: 'df'?")
    assert facts is not None
    assert (facts.missing_name, facts.suggestion) == ("dff", "df")


def test_error_facts_none_without_an_exception() -> None:
    assert error_facts("No exception yet.") is None


def test_failing_line_of_a_plain_python_traceback() -> None:
    text = (
        "Traceback (most recent call last):\n"
        '  File "/home/me/analysis.py", line 3, in <module>\n'
        "    value = table['x']\n"
        '  File "/usr/lib/python3.11/json/__init__.py", line 346, in loads\n'
        "    return _default_decoder.decode(s)\n"
        "KeyError: 'x'\n"
    )
    assert failing_line(text) == "value = table['x']"


def test_code_blocks_and_inline_code() -> None:
    assert code_blocks("a\n```python\nx = 1\n```\n") == [("python", "x = 1\n")]
    assert inline_code("please run `df.head()` now") == "df.head()"
    assert inline_code("nothing here") is None


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("ERROR: the user declined to run this code.", True),
        ("ERROR: run_python is turned off for this cell", True),
        ("Denied under --approval deny", True),
        ("    price\ncount 3", False),
    ],
)
def test_is_refusal(text: str, refused: bool) -> None:
    assert is_refusal(text) is refused


# --- code edits ---------------------------------------------------------------------------------


def test_rename_variable_leaves_attributes_strings_and_comments_alone() -> None:
    source = "dff = 1  # dff\nprint(dff, obj.dff, 'dff')\n"
    assert rename_variable(source, "dff", "df") == "df = 1  # dff\nprint(df, obj.dff, 'dff')\n"


def test_replace_string_keeps_each_literals_quotes() -> None:
    source = """a = df["prcie"] + df['prcie'] + df['other']\n"""
    assert replace_string(source, "prcie", "price") == (
        """a = df["price"] + df['price'] + df['other']\n"""
    )


def test_edits_fall_back_to_text_for_cells_that_do_not_tokenize() -> None:
    source = "%time df['prcie'].sum(\n"
    assert replace_string(source, "prcie", "price") == "%time df['price'].sum(\n"
    assert rename_variable("x = (dff\n", "dff", "df") == "x = (df\n"


def test_proposed_fix_matches_columns_case_insensitively() -> None:
    error = ErrorFacts("KeyError", "'PRICE'", "df['PRICE']")
    fix = proposed_fix(error, "df['PRICE']\n", columns=("price", "qty"), frame="df")
    assert (fix.code, fix.fixed) == ("df['price']\n", True)


def test_the_demo_model_reads_the_columns_from_the_notebooks_own_inspect_answer() -> None:
    pd = pytest.importorskip("pandas")
    from codex_notebook.demo.tool_answers import frame_facts
    from codex_notebook.notebook.tools.describe import describe

    frame = pd.DataFrame({"region": ["n"], "month": ["jan"], "revenue": [1.0]})
    facts = frame_facts(describe("sales", frame).text)
    assert facts.columns == ("region", "month", "revenue")
    assert facts.shape == (1, 3)
