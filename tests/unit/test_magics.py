"""%%codex / %codex parsing and session logic on a plain InteractiveShell (no kernel)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from codex_notebook.notebook import extension
from codex_notebook.notebook.session import NotebookSession


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CODEX_NOTEBOOK_BACKEND", "demo")
    ip = InteractiveShell.instance()
    ip.extension_manager.load_extension("codex_notebook")
    try:
        yield ip
    finally:
        ip.extension_manager.unload_extension("codex_notebook")
        InteractiveShell.clear_instance()


def session() -> NotebookSession:
    current = extension.current_session()
    assert current is not None
    return current


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("--sandbox nowhere", "--sandbox='nowhere' is not a sandbox setting; use one of read-only"),
        ("--approval always", "--approval='always' is not an approval setting"),
        ("--sandbox danger-full-access", "codex's own word; here it is 'full-access'"),
        ("--timeout -1", "--timeout must be a positive number"),
        ("--timeout nan", "--timeout must be a positive number"),
        ("--timeout soon", "invalid float value"),
        ("-o 1abc", "-o needs a Python variable name"),
        ("--cwd /no/such/dir", "is not an existing directory"),
        ("--schema Missing", "no such name in the notebook"),
        ("--bogus", "unrecognized arguments: --bogus"),
    ],
)
def test_bad_cell_options_name_the_problem_and_start_nothing(
    shell: InteractiveShell, line: str, problem: str
) -> None:
    with pytest.raises(UsageError, match=problem.replace("(", r"\(")):
        shell.run_cell_magic("codex", line, "say hi")
    assert list(session().turns) == []


def test_bad_option_error_includes_usage(shell: InteractiveShell) -> None:
    with pytest.raises(UsageError, match=r"Usage: %%codex"):
        shell.run_cell_magic("codex", "--bogus", "say hi")


def test_schema_must_be_a_pydantic_model(shell: InteractiveShell) -> None:
    shell.user_ns["NotAModel"] = dict
    with pytest.raises(UsageError, match="not a pydantic model class"):
        shell.run_cell_magic("codex", "--schema NotAModel", "say hi")


def test_empty_cell_is_a_usage_error(shell: InteractiveShell) -> None:
    with pytest.raises(UsageError, match="empty"):
        shell.run_cell_magic("codex", "", "   \n")


def test_unknown_subcommand_lists_the_valid_ones(shell: InteractiveShell) -> None:
    with pytest.raises(UsageError, match="status, wait, interrupt"):
        shell.run_line_magic("codex", "frobnicate")


def test_config_rejects_unknown_keys(shell: InteractiveShell) -> None:
    with pytest.raises(UsageError, match="expected key=value"):
        shell.run_line_magic("codex", "config colour=blue")


@pytest.mark.parametrize(
    ("word", "problem"),
    [
        ("timeout=-5", "positive number of seconds"),
        ("timeout=0", "positive number of seconds"),
        ("timeout=nan", "positive number of seconds"),
        ("thread=", "needs a thread name"),
    ],
)
def test_config_rejects_what_the_cell_options_reject(
    shell: InteractiveShell, word: str, problem: str
) -> None:
    with pytest.raises(UsageError, match=problem):
        shell.run_line_magic("codex", f"config {word}")
    assert session().defaults.timeout is None and session().defaults.thread == "main"


def test_config_sets_defaults_for_later_cells(shell: InteractiveShell) -> None:
    shell.run_line_magic("codex", "config model=gpt-test approval=deny timeout=30")
    defaults = session().defaults
    assert (defaults.model, defaults.approval, defaults.timeout) == ("gpt-test", "deny", 30.0)


def test_cell_options_override_config_defaults(shell: InteractiveShell) -> None:
    shell.run_line_magic("codex", "config model=gpt-test")
    options = session().with_defaults(model="other", thread="t")
    assert (options.model, options.thread) == ("other", "t")


def test_backend_switch_rejects_unknown_backends(shell: InteractiveShell) -> None:
    with pytest.raises(UsageError, match="demo, codex"):
        shell.run_line_magic("codex", "backend nowhere")


class Submitted:
    """Stands in for session.submit: records what a cell would start."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, int | None]] = []

    def __call__(self, prompt: str, options: Any, *, cell: int | None, show: Any) -> None:
        self.calls.append((prompt, options, cell))


@pytest.fixture
def submitted(shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch) -> Submitted:
    recorder = Submitted()
    monkeypatch.setattr(session(), "submit", recorder)
    return recorder


def test_prompt_interpolates_braces_and_dollars(
    shell: InteractiveShell, submitted: Submitted
) -> None:
    shell.user_ns.update(name="world", n=2)
    shell.run_cell_magic("codex", "", "hello $name, {n + 1} times")
    assert submitted.calls[0][0] == "hello world, 3 times"


def test_a_prompt_that_does_not_interpolate_is_sent_as_written_and_says_why(
    shell: InteractiveShell, submitted: Submitted, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "write def f(): return {missing_name: 1}"
    shell.run_cell_magic("codex", "", text)
    assert submitted.calls[0][0] == text
    err = capsys.readouterr().err
    assert "{missing_name} was not filled in (name 'missing_name' is not defined)" in err
    assert "{{ and }}" in err


def test_a_prompt_that_does_not_interpolate_names_the_expression_that_failed(
    shell: InteractiveShell, submitted: Submitted, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.user_ns["rows"] = [1, 2]
    shell.run_cell_magic("codex", "", "summarize the {len(rows)} rows of {missing}")
    err = capsys.readouterr().err
    assert "{missing} was not filled in (name 'missing' is not defined)" in err
    assert "len(rows)" not in err


def test_a_dollar_amount_in_a_prompt_is_left_alone(
    shell: InteractiveShell, submitted: Submitted, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.user_ns["n"] = 3
    shell.run_cell_magic("codex", "", "Which {n} products cost more than $100 or $5.99?")
    assert submitted.calls[0][0] == "Which 3 products cost more than $100 or $5.99?"
    assert capsys.readouterr().err == ""


def test_lines_before_a_dollar_name_are_kept(shell: InteractiveShell, submitted: Submitted) -> None:
    shell.user_ns["name"] = "sales"
    shell.run_cell_magic("codex", "", "Context: a quarterly report.\nThe table $name is big.")
    assert submitted.calls[0][0] == "Context: a quarterly report.\nThe table sales is big."


@pytest.mark.parametrize(
    ("prompt", "sent"),
    [
        ("Summarize $name.", "Summarize sales."),
        ("What is $name's size?", "What is sales's size?"),
        ("Costs $$name, not $name", "Costs $name, not sales"),
    ],
)
def test_a_dollar_name_ends_where_the_name_ends(
    shell: InteractiveShell, submitted: Submitted, prompt: str, sent: str
) -> None:
    shell.user_ns["name"] = "sales"
    shell.run_cell_magic("codex", "", prompt)
    assert submitted.calls[0][0] == sent


@pytest.mark.timeout(30)  # quadratic (IPython's $-pattern) would take hours here
@pytest.mark.parametrize(
    "line",
    [
        "x" * 1_000_000,  # a pasted one-line JSON blob: no $ at all
        " ".join(f"$v{i}$" for i in range(20_000)) + " — what's the sum?",
    ],
)
def test_a_megabyte_long_prompt_line_interpolates_in_linear_time(
    shell: InteractiveShell, submitted: Submitted, line: str
) -> None:
    shell.user_ns.update({f"v{i}": i for i in range(20_000)})
    shell.run_cell_magic("codex", "", line)
    assert len(submitted.calls) == 1


def test_an_unknown_dollar_name_is_named_as_written(
    shell: InteractiveShell, submitted: Submitted, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run_cell_magic("codex", "", "why is $HOME empty in my shell?")
    err = capsys.readouterr().err
    assert "$HOME was not filled in (name 'HOME' is not defined)" in err
    assert "Write $$ for a literal $" in err


class SlowToStop:
    """A turn whose wait is interrupted, and which then does not stop in time (a server
    still starting)."""

    def __init__(self) -> None:
        self.waits = 0
        self.interrupted = False

    def wait(self, timeout: float | None = None) -> bool:
        self.waits += 1
        if self.waits == 1:
            raise KeyboardInterrupt
        return False

    def interrupt(self) -> None:
        self.interrupted = True


def test_an_interrupted_wait_cell_does_not_claim_a_stop_that_has_not_happened(
    shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    turn = SlowToStop()
    monkeypatch.setattr(session(), "submit", lambda *args, **kwargs: turn)
    shell.run_cell_magic("codex", "--wait", "say hi")
    out = capsys.readouterr().out
    assert turn.interrupted
    assert "was stopped" not in out and "stopping" in out


def test_cells_are_numbered_as_the_notebook_shows_them(
    shell: InteractiveShell, submitted: Submitted
) -> None:
    first = shell.execution_count
    shell.run_cell("%%codex\nfirst", store_history=True)
    shell.run_cell("%%codex\nsecond", store_history=True)
    assert [cell for _, _, cell in submitted.calls] == [first, first + 1]


def test_backend_auto_picks_demo_without_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from codex_notebook.notebook.backends import choose_backend

    monkeypatch.delenv("CODEX_NOTEBOOK_BACKEND", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("CODEX_API_KEY", raising=False)
    monkeypatch.setenv("CODEX_HOME", str(tmp_path))
    assert choose_backend() == "demo"
    (tmp_path / "auth.json").write_text("{}")
    assert choose_backend() == "codex"


def test_unknown_backend_env_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from codex_notebook.notebook.backends import choose_backend

    monkeypatch.setenv("CODEX_NOTEBOOK_BACKEND", "cloud")
    with pytest.raises(ValueError, match="CODEX_NOTEBOOK_BACKEND"):
        choose_backend()


def test_thread_map_survives_a_new_session(tmp_path: Path) -> None:
    from codex_notebook.notebook.threads import Scope, ThreadMap

    scope = Scope("demo:x", "analysis.ipynb")
    ThreadMap(tmp_path / "threads.json").set(scope, "main", "thread-1")
    assert ThreadMap(tmp_path / "threads.json").get(scope, "main") == "thread-1"
    assert ThreadMap(tmp_path / "threads.json").get(Scope("demo:x", "other.ipynb"), "main") is None


def test_two_kernels_writing_the_thread_map_at_once_keep_both_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from codex_notebook.notebook.threads import Scope, ThreadMap

    path = tmp_path / "threads.json"
    first, second = ThreadMap(path), ThreadMap(path)  # two kernels, two notebooks, one folder
    first.names(Scope("demo:x", "a.ipynb"))  # cached: the next read is the write's own
    read, wrote = threading.Event(), threading.Event()
    load = first._load

    def slow_load() -> dict[str, dict[str, str]]:
        data = load()
        read.set()
        wrote.wait(0.5)  # the other kernel writes now, unless it has to wait for us
        return data

    monkeypatch.setattr(first, "_load", slow_load)
    writer = threading.Thread(target=first.set, args=(Scope("demo:x", "a.ipynb"), "main", "t-a"))
    writer.start()
    assert read.wait(5)
    other = threading.Thread(target=second.set, args=(Scope("demo:x", "b.ipynb"), "main", "t-b"))
    other.start()
    other.join(0.2)
    if not other.is_alive():
        wrote.set()
    writer.join(5)
    other.join(5)
    fresh = ThreadMap(path)
    assert fresh.get(Scope("demo:x", "a.ipynb"), "main") == "t-a"
    assert fresh.get(Scope("demo:x", "b.ipynb"), "main") == "t-b"
