"""The built-in offline demo model: the real ``codex app-server`` without an OpenAI account.

:class:`DemoModelServer` serves a scripted model on ``127.0.0.1`` that speaks the OpenAI
Responses API streaming format; :class:`DemoBackend` adds a generated ``CODEX_HOME`` pointing
codex at it, a scratch workspace and the child environment. The test suite, the demo notebooks
and Binder use it; answers are deterministic, so tests can assert exact text.

What the model answers is chosen from the last user text of each request (never from arrival
order, so concurrent turns each get their own answer). :func:`script_for` tells what a prompt
will do without any server. Directives (for tests), case-sensitive, anywhere in the prompt:

=============================  ======================================================
``FAIL``                       HTTP 400 whose text says it is a demonstration; codex
                               ends the turn ``failed`` with that text as the error
``TOOL:<command>``             ``exec_command`` with ``{"cmd": <command>,
                               "yield_time_ms": 1000}`` (``<command>`` = rest of the
                               line without directive tokens); the next call answers
                               "The command `<command>` exited with code N. Its
                               output:" + the output in a fenced block
``ESCALATE``                   the tool call also asks ``"sandbox_permissions":
                               "require_escalated"`` (approval request under
                               ``on-request``); alone: ``echo escalated``
``NBTOOL:<tool> ARGS:<json>``  call the client tool ``notebook.<tool>`` (several: in
                               order); then quote every call's output
``ECHO``                       the answer is the prompt text, one delta per word
``DELTAS:N``                   the answer is ``"chunk0 chunk1 ... chunk{N-1}"`` in
                               exactly N deltas
``DELAY_MS:N``                 N ms before every delta
``SLOW``                       ``DELTAS:40 DELAY_MS:100`` unless given explicitly
=============================  ======================================================

Without a directive, and when the request offers the notebook's kernel tools (namespace
``notebook``), prompts about a failure ("why did my cell fail?", "fix"), about running code in the
kernel ("run `df.describe()`", "compute ...") or about the user's data ("what data do I have?")
play a story with those tools (:mod:`codex_notebook.demo.kernel_story`). Otherwise keywords pick
notebook demos: ``fail`` (a labelled demonstration failure), ``approval``/``delete``/``install``
(a command that needs approval), ``edit``/``patch``/``create a file`` (``apply_patch`` adds
``hello_demo.py`` to the workspace: a ``fileChange`` item), ``list files`` (``ls -l``),
``run``/``command`` (``python3 --version``), ``slow`` (a long, slow answer), and otherwise a
markdown answer with a heading, a table and a code block. A turn with an ``outputSchema`` gets a
JSON document satisfying it. Details: :mod:`codex_notebook.demo.script`.
"""

from __future__ import annotations

from codex_notebook.demo.backend import DemoBackend, SandboxProbe, probe_sandbox, resolve_codex_bin
from codex_notebook.demo.home import DEMO_MODEL, render_config, write_codex_home
from codex_notebook.demo.schema_sample import SchemaSampleError, sample_instance
from codex_notebook.demo.script import (
    HttpFailure,
    Reply,
    TextAnswer,
    ToolCall,
    deltas_text,
    reply_for_request,
    script_for,
)
from codex_notebook.demo.server import DemoModelServer

__all__ = [
    "DEMO_MODEL",
    "DemoBackend",
    "DemoModelServer",
    "HttpFailure",
    "Reply",
    "SandboxProbe",
    "SchemaSampleError",
    "TextAnswer",
    "ToolCall",
    "deltas_text",
    "probe_sandbox",
    "render_config",
    "reply_for_request",
    "resolve_codex_bin",
    "sample_instance",
    "script_for",
    "write_codex_home",
]
