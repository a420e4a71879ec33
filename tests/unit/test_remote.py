"""Choosing a remote server: URLs, tokens, environment variables, option conflicts, and the
initialize answer that proves the server speaks our protocol."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from codex_notebook._endpoint import Secret, parse_endpoint
from codex_notebook.errors import (
    CodexError,
    IncompatibleServerError,
    InvalidArgumentError,
    MethodNotFoundError,
    TransportClosedError,
)
from codex_notebook.remote import check_initialize, load_token, make_transport, server_url
from codex_notebook.transport import SubprocessTransport
from codex_notebook.transport_ws import WebSocketTransport

TOKEN = "tok-Secret-71d0c3"


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(f"  {TOKEN}\n", encoding="utf-8")
    return path


def token_of(transport: Any) -> str | None:
    assert isinstance(transport, WebSocketTransport)
    secret = transport._token
    return secret.reveal() if secret is not None else None


# -- URLs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("ws://127.0.0.1:4500", "ws://127.0.0.1:4500"),
        ("ws://127.0.0.1:4500/", "ws://127.0.0.1:4500"),
        ("ws://example.org", "ws://example.org:80"),
        ("wss://codex.example.org/app-server?x=1", "wss://codex.example.org:443/app-server"),
        ("ws://[::1]:4500", "ws://[::1]:4500"),
    ],
)
def test_server_urls_are_shown_without_query(url: str, shown: str) -> None:
    assert parse_endpoint(url).url == shown


def test_unix_alone_is_codex_default_socket(tmp_path: Path) -> None:
    endpoint = parse_endpoint("unix://", environ={"CODEX_HOME": str(tmp_path)})
    assert endpoint.unix_path == str(tmp_path / "app-server-control" / "app-server-control.sock")
    assert endpoint.url == f"unix://{endpoint.unix_path}"


def test_a_relative_unix_path_is_taken_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert parse_endpoint("unix://run/codex.sock").unix_path == str(tmp_path / "run/codex.sock")


@pytest.mark.parametrize("url", ["http://127.0.0.1:4500", "127.0.0.1:4500", "", "ws://"])
def test_a_url_that_is_not_a_server_address_is_refused(url: str) -> None:
    with pytest.raises(InvalidArgumentError, match=r"ws://HOST:PORT"):
        parse_endpoint(url)


def test_credentials_in_the_url_are_refused_without_echoing_them() -> None:
    with pytest.raises(InvalidArgumentError, match="token_file=") as caught:
        parse_endpoint(f"ws://user:{TOKEN}@127.0.0.1:4500")
    assert TOKEN not in str(caught.value)


def test_a_secret_hides_itself() -> None:
    secret = Secret(TOKEN)
    assert TOKEN not in repr(secret) + str(secret) + f"{secret}"
    assert secret.reveal() == TOKEN


# -- tokens ---------------------------------------------------------------------------------------


def test_token_sources_in_order(token_file: Path) -> None:
    env = {"CODEX_APP_SERVER_TOKEN": "from-env", "CODEX_APP_SERVER_TOKEN_FILE": str(token_file)}
    assert load_token("given", None, environ=env) == ("given", "token=")
    assert load_token(None, token_file, environ=env) == (TOKEN, f"token_file={token_file}")
    assert load_token(None, None, environ=env) == ("from-env", "$CODEX_APP_SERVER_TOKEN")
    only_file = {"CODEX_APP_SERVER_TOKEN_FILE": str(token_file)}
    assert load_token(None, None, environ=only_file) == (
        TOKEN,
        f"$CODEX_APP_SERVER_TOKEN_FILE ({token_file})",
    )
    assert load_token(None, None, environ={}) == (None, "no token")


def test_both_token_and_token_file_is_an_error(token_file: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="not both"):
        load_token(TOKEN, token_file, environ={})


@pytest.mark.parametrize(
    ("content", "says"), [(b"", "is empty"), (b"  \n", "is empty"), (b"\xff\xfe", "not text")]
)
def test_a_bad_token_file_is_named(tmp_path: Path, content: bytes, says: str) -> None:
    path = tmp_path / "token"
    path.write_bytes(content)
    with pytest.raises(InvalidArgumentError, match=says) as caught:
        load_token(None, path, environ={})
    assert str(path) in str(caught.value)


def test_a_missing_token_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(InvalidArgumentError, match="cannot read the token file"):
        load_token(None, None, environ={"CODEX_APP_SERVER_TOKEN_FILE": str(missing)})


# -- which transport ------------------------------------------------------------------------------


def test_url_makes_a_websocket_transport(token_file: Path) -> None:
    transport = make_transport(url="ws://127.0.0.1:4500", token_file=token_file, environ={})
    assert isinstance(transport, WebSocketTransport)
    assert token_of(transport) == TOKEN
    assert server_url(transport) == "ws://127.0.0.1:4500"
    assert transport.pid is None


def test_the_environment_selects_the_remote_server(token_file: Path) -> None:
    env = {
        "CODEX_APP_SERVER_URL": "ws://127.0.0.1:4501",
        "CODEX_APP_SERVER_TOKEN_FILE": str(token_file),
    }
    transport = make_transport(environ=env)
    assert isinstance(transport, WebSocketTransport)
    assert transport.url == "ws://127.0.0.1:4501"
    assert token_of(transport) == TOKEN


def test_codex_bin_wins_over_the_environment(fake_bin: str) -> None:
    env = {"CODEX_APP_SERVER_URL": "ws://127.0.0.1:4501"}
    transport = make_transport(codex_bin=fake_bin, environ=env)
    assert isinstance(transport, SubprocessTransport)
    assert server_url(transport) is None


def test_url_wins_over_the_environment() -> None:
    env = {"CODEX_APP_SERVER_URL": "ws://127.0.0.1:4501", "CODEX_APP_SERVER_TOKEN": TOKEN}
    transport = make_transport(url="ws://127.0.0.1:4502", environ=env)
    assert isinstance(transport, WebSocketTransport)
    assert transport.url == "ws://127.0.0.1:4502"
    assert token_of(transport) == TOKEN  # the token still comes from the environment


def test_without_url_or_environment_a_local_server_is_spawned(fake_bin: str) -> None:
    assert isinstance(make_transport(codex_bin=fake_bin, environ={}), SubprocessTransport)


def test_codex_bin_and_url_together_is_an_error(fake_bin: str) -> None:
    with pytest.raises(InvalidArgumentError, match="not both"):
        make_transport(codex_bin=fake_bin, url="ws://127.0.0.1:4500", environ={})


@pytest.mark.parametrize("option", ["codex_home", "config", "env", "cwd"])
def test_options_for_a_spawned_server_are_refused_for_a_remote_one(option: str) -> None:
    value: Any = {"a": "b"} if option in ("config", "env") else "/tmp"
    env = {"CODEX_APP_SERVER_URL": "ws://127.0.0.1:4501"}
    with pytest.raises(InvalidArgumentError, match=f"{option}=") as caught:
        make_transport(environ=env, **{option: value})
    assert "ws://127.0.0.1:4501 (from $CODEX_APP_SERVER_URL)" in str(caught.value)
    assert "codex_bin=" in str(caught.value)


def test_a_token_without_a_server_is_an_error(fake_bin: str) -> None:
    with pytest.raises(InvalidArgumentError, match="pass url="):
        make_transport(codex_bin=fake_bin, token=TOKEN, environ={})


def test_a_token_sent_in_clear_to_another_host_is_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    make_transport(url="ws://10.1.2.3:4500", token=TOKEN, environ={})
    make_transport(url="ws://127.0.0.1:4500", token=TOKEN, environ={})
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "ws://10.1.2.3:4500" in warnings[0]
    assert "SSH port forwarding" in warnings[0]
    assert TOKEN not in warnings[0]


# -- the initialize answer ------------------------------------------------------------------------

REMOTE = WebSocketTransport("ws://127.0.0.1:4500")


def settled(outcome: Any) -> Future[Any]:
    future: Future[Any] = Future()
    checked = check_initialize(REMOTE, future)
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
    return checked


def test_a_codex_answer_passes() -> None:
    answer = {"userAgent": "codex_notebook/0.163.0", "codexHome": "/x"}
    assert settled(answer).result(1) == answer


def test_an_error_answer_to_initialize_means_another_protocol() -> None:
    error = settled(MethodNotFoundError(-32601, "Method not found", method="initialize"))
    with pytest.raises(IncompatibleServerError, match="refused our initialize") as caught:
        error.result(1)
    assert "ws://127.0.0.1:4500" in str(caught.value)
    assert "JSON-RPC error -32601" in str(caught.value)


@pytest.mark.parametrize("answer", [{}, {"userAgent": 5}, [1, 2], None])
def test_an_answer_without_codex_user_agent_means_another_protocol(answer: Any) -> None:
    with pytest.raises(IncompatibleServerError, match="without codex's userAgent"):
        settled(answer).result(1)


def test_a_transport_failure_during_initialize_passes_through() -> None:
    lost = TransportClosedError("gone")
    with pytest.raises(TransportClosedError) as caught:
        settled(lost).result(1)
    assert caught.value is lost


def test_a_spawned_server_answer_is_untouched(fake_bin: str) -> None:
    future: Future[Any] = Future()
    assert check_initialize(SubprocessTransport(fake_bin), future) is future


def test_every_remote_error_is_a_codex_error() -> None:
    assert issubclass(IncompatibleServerError, CodexError)
    assert issubclass(InvalidArgumentError, ValueError)
