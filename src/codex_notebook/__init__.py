"""Drive the OpenAI Codex agent from Python and from Jupyter notebook cells.

Library::

    from codex_notebook import Codex
    with Codex() as codex:
        print(codex.thread_start().run("Say hello").text)

Notebook: ``%load_ext codex_notebook`` then ``%%codex`` cells.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .aio import AsyncCodex, AsyncThread, AsyncTurnHandle
from .client import Codex, Thread, TurnHandle
from .errors import (
    AuthenticationError,
    BinaryNotFoundError,
    CodexError,
    CodexRpcError,
    CodexTimeoutError,
    ConnectionLostError,
    IncompatibleServerError,
    InvalidArgumentError,
    OutputParseError,
    ProtocolError,
    RemoteConnectError,
    ServerOverloadedError,
    StartupError,
    TransportClosedError,
)
from .messages import DEFER, Notification, ServerRequest, UnknownParams
from .policies import Approval, Sandbox
from .results import TurnError, TurnResult, Usage
from .router import TurnCursor
from .tools import Tool, ToolCall, ToolResult, Toolset

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__version__ = "0.1.0"

__all__ = [
    "DEFER",
    "Approval",
    "AsyncCodex",
    "AsyncThread",
    "AsyncTurnHandle",
    "AuthenticationError",
    "BinaryNotFoundError",
    "Codex",
    "CodexError",
    "CodexRpcError",
    "CodexTimeoutError",
    "ConnectionLostError",
    "IncompatibleServerError",
    "InvalidArgumentError",
    "Notification",
    "OutputParseError",
    "ProtocolError",
    "RemoteConnectError",
    "Sandbox",
    "ServerOverloadedError",
    "ServerRequest",
    "StartupError",
    "Thread",
    "Tool",
    "ToolCall",
    "ToolResult",
    "Toolset",
    "TransportClosedError",
    "TurnCursor",
    "TurnError",
    "TurnHandle",
    "TurnResult",
    "UnknownParams",
    "Usage",
    "__version__",
    "last_turn",
    "load_ipython_extension",
    "unload_ipython_extension",
]


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """``%load_ext codex_notebook``: registers ``%%codex`` and ``%codex``."""
    from .notebook.extension import load

    load(ipython)


def unload_ipython_extension(ipython: InteractiveShell) -> None:
    """Stops every turn and the app-server."""
    from .notebook.extension import unload

    unload(ipython)


def last_turn() -> Any:
    """The most recent ``NotebookTurn`` started by ``%%codex`` in this kernel (or None)."""
    from .notebook.session import last_turn as _last_turn

    return _last_turn()
