"""Client-defined tools: functions of yours that the agent can call during a turn.

Declare them once per thread; codex offers them to the model and, when the
model calls one, sends the client an ``item/tool/call`` request that this
library routes to your handler::

    from codex_notebook import Codex, Tool, Toolset, ToolResult

    def variables(call):
        return ToolResult.text(f"{len(globals())} globals")

    kernel = Toolset(
        namespace="kernel",
        description="The user's live Python process.",
        tools=[Tool("variables", "List the user's variables.", {"type": "object"}, variables)],
    )
    with Codex(experimental_api=True) as codex:
        thread = codex.thread_start(tools=kernel)
        print(thread.run("What is in my kernel?").text)

Facts these rules come from (measured on codex 0.163.0 and 0.171.0; see
docs/architecture.md, "Client tools"):

* Tools exist only where ``thread/start`` declared them (``dynamicTools``), which
  needs ``initialize`` with ``capabilities.experimentalApi``.  The set is frozen:
  saved with the thread and restored by ``thread/resume`` / ``thread/fork``;
  declaring tools there is ignored.  So resume/fork only re-register handlers.
* The model sees a namespace as one ``{"type": "namespace", "name": ...,
  "tools": [...]}`` entry of its ``tools`` list and must call a tool with
  ``{"type": "function_call", "namespace": "<namespace>", "name": "<tool>"}``
  (a dotted or prefixed name is "unsupported call").  A bare tool (no
  namespace) is called by its name alone.
* Names match ``^[a-zA-Z0-9_-]+$`` (at most 128 characters); some namespaces
  are reserved; a namespace description is at most 1024 characters.  The
  server rejects violations at ``thread/start``; we reject them earlier, here,
  with the rule in the message.
* Arguments are not validated against the input schema by codex: handlers get
  whatever the model sent (always a dict here; anything else becomes ``{}``).
* The model sees only the content items, never ``success``: failure text
  starts with ``ERROR:`` (:meth:`ToolResult.error` does it).
* codex waits for an answer with no timeout of its own; each :class:`Tool` has
  one here (``timeout``), after which the call is answered with an error.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Union

from .errors import InvalidArgumentError
from .messages import Deferred, ServerRequest

if TYPE_CHECKING:
    from collections.abc import Awaitable

__all__ = [
    "DEFAULT_TOOL_TIMEOUT_S",
    "MAX_IMAGE_BYTES",
    "ImageContent",
    "TextContent",
    "Tool",
    "ToolCall",
    "ToolHandler",
    "ToolRegistry",
    "ToolResult",
    "Toolset",
]

#: A tool call not answered within this many seconds is answered with an error.
DEFAULT_TOOL_TIMEOUT_S = 60.0
#: The largest PNG a tool answer may carry (the model context is precious).
MAX_IMAGE_BYTES = 512 * 1024

_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
_MAX_NAME = 128
_MAX_NAMESPACE_DESCRIPTION = 1024
#: Namespaces the Responses API reserves, and codex's own ("mcp", "mcp__*"); checked on
#: codex 0.163.0 and 0.171.0 (``thread/start`` refuses them).
RESERVED_NAMESPACES = frozenset(
    {
        "browser",
        "computer",
        "container",
        "file_search",
        "functions",
        "image_gen",
        "mcp",
        "multi_tool_use",
        "python",
        "terminal",
        "web",
    }
)
#: Codex's built-in tools: a bare client tool of the same name is accepted by the server and
#: then silently dropped, so it is refused here (put it in a namespace instead).
BUILTIN_TOOLS = frozenset(
    {
        "apply_patch",
        "create_goal",
        "exec_command",
        "get_goal",
        "local_shell",
        "multi_agent_v1",
        "request_user_input",
        "shell",
        "update_goal",
        "update_plan",
        "view_image",
        "web_search",
        "write_stdin",
    }
)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class TextContent:
    """A text content item of a tool answer."""

    text: str

    def to_wire(self) -> dict[str, Any]:
        return {"type": "inputText", "text": self.text}


@dataclass(frozen=True)
class ImageContent:
    """A PNG image content item (at most :data:`MAX_IMAGE_BYTES`)."""

    png: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.png, (bytes, bytearray)) or not self.png.startswith(_PNG_SIGNATURE):
            raise InvalidArgumentError("ImageContent takes the bytes of a PNG image")
        if len(self.png) > MAX_IMAGE_BYTES:
            raise InvalidArgumentError(
                f"the PNG is {len(self.png):,} bytes; a tool answer image may be at most "
                f"{MAX_IMAGE_BYTES:,} (scale it down)"
            )

    def to_wire(self) -> dict[str, Any]:
        data = base64.b64encode(bytes(self.png)).decode("ascii")
        return {"type": "inputImage", "imageUrl": f"data:image/png;base64,{data}"}


Content = Union[TextContent, ImageContent]  # noqa: UP007  (a runtime alias on Python 3.10)


@dataclass(frozen=True)
class ToolResult:
    """A tool's answer: content items for the model, and whether the call succeeded.

    The model sees only the content; ``success`` is recorded in the thread's
    ``dynamicToolCall`` item.  Build with :meth:`text`, :meth:`error` or
    :meth:`image`.
    """

    content: tuple[Content, ...]
    success: bool = True

    def __post_init__(self) -> None:
        if not self.content:
            raise InvalidArgumentError("a ToolResult needs at least one content item")
        for item in self.content:
            if not isinstance(item, (TextContent, ImageContent)):
                raise InvalidArgumentError(
                    f"ToolResult content items are TextContent or ImageContent, "
                    f"not {type(item).__name__}"
                )

    @classmethod
    def text(cls, text: str, *, success: bool = True) -> ToolResult:
        return cls((TextContent(str(text)),), success)

    @classmethod
    def error(cls, message: str) -> ToolResult:
        """A failure the model can recognise: the text starts with ``ERROR:``."""
        text = str(message)
        if not text.startswith("ERROR:"):
            text = f"ERROR: {text}"
        return cls((TextContent(text),), False)

    @classmethod
    def image(cls, png: bytes, *, text: str | None = None) -> ToolResult:
        """An image answer (a PNG), with an optional caption before it."""
        items: list[Content] = [TextContent(text)] if text else []
        items.append(ImageContent(png))
        return cls(tuple(items), True)

    @property
    def text_content(self) -> str:
        """All text items joined (what a log or a widget shows)."""
        return "\n".join(item.text for item in self.content if isinstance(item, TextContent))

    def to_wire(self) -> dict[str, Any]:
        return {"contentItems": [item.to_wire() for item in self.content], "success": self.success}


@dataclass(frozen=True)
class ToolCall:
    """One call of a tool by the model: what the handler receives.

    ``arguments`` is the dict the model sent (codex does not validate it against
    the input schema).  A handler that returned :data:`~codex_notebook.DEFER`
    answers later with :meth:`respond`; so can anyone holding the call.
    """

    thread_id: str
    turn_id: str
    call_id: str
    namespace: str | None
    tool: str
    arguments: dict[str, Any]
    request: ServerRequest = field(repr=False, compare=False)

    @classmethod
    def from_request(cls, request: ServerRequest) -> ToolCall:
        params = request.params_dict
        arguments = params.get("arguments")
        namespace = params.get("namespace")
        return cls(
            thread_id=str(params.get("threadId") or request.thread_id or ""),
            turn_id=str(params.get("turnId") or request.turn_id or ""),
            call_id=str(params.get("callId") or ""),
            namespace=namespace if isinstance(namespace, str) else None,
            tool=str(params.get("tool") or ""),
            arguments=dict(arguments) if isinstance(arguments, dict) else {},
            request=request,
        )

    @property
    def qualified_name(self) -> str:
        """``namespace.tool`` (or just ``tool`` for a bare tool)."""
        return qualified(self.namespace, self.tool)

    @property
    def settled(self) -> bool:
        """Answered, or moot (turn over, transport gone): a late answer would be dropped."""
        return self.request.settled

    def respond(self, result: ToolResult | str) -> bool:
        """Answer the call (a string becomes a text result). False if already settled."""
        return self.request.respond(as_result(result).to_wire())


#: What a tool handler may return: an answer, text, DEFER, or an awaitable of an answer
#: (awaited on the AsyncCodex's event loop).
ToolOutcome = Union[ToolResult, str, Deferred, "Awaitable[ToolResult | str]"]
ToolHandler = Callable[[ToolCall], ToolOutcome]


def as_result(value: object) -> ToolResult:
    """A handler's return value as a ToolResult (a string is a successful text answer)."""
    if isinstance(value, ToolResult):
        return value
    if isinstance(value, str):
        return ToolResult.text(value)
    raise InvalidArgumentError(
        f"a tool handler must return a ToolResult or a str (or DEFER), not {type(value).__name__}"
    )


def qualified(namespace: str | None, tool: str) -> str:
    return f"{namespace}.{tool}" if namespace else tool


def _check_name(kind: str, name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidArgumentError(
            f"{kind} name {name!r} is not allowed: names match ^[a-zA-Z0-9_-]+$ "
            "(letters, digits, '_' and '-'; no dots or spaces)"
        )
    if len(name) > _MAX_NAME:
        raise InvalidArgumentError(
            f"{kind} name {name[:40]!r}... is {len(name)} characters; at most {_MAX_NAME}"
        )
    return name


@dataclass(frozen=True)
class Tool:
    """One client tool: its name, what the model is told, its argument schema, its handler.

    ``handler(call)`` runs on a worker thread (never the reader thread) and
    returns a :class:`ToolResult` or a string; an exception or exceeding
    ``timeout`` seconds (None: no limit) answers the model with an ``ERROR:``
    text.  Return :data:`~codex_notebook.DEFER` to answer later with
    ``call.respond(...)`` without holding the worker thread.
    """

    name: str
    description: str
    input_schema: Mapping[str, Any]
    handler: ToolHandler = field(repr=False, compare=False)
    timeout: float | None = DEFAULT_TOOL_TIMEOUT_S

    def __post_init__(self) -> None:
        _check_name("tool", self.name)
        if not isinstance(self.description, str):
            raise InvalidArgumentError(f"tool {self.name!r}: description must be a str")
        if not isinstance(self.input_schema, Mapping):
            raise InvalidArgumentError(
                f"tool {self.name!r}: input_schema must be a JSON Schema dict, "
                f"e.g. {{'type': 'object', 'properties': {{...}}}}"
            )
        if not callable(self.handler):
            raise InvalidArgumentError(f"tool {self.name!r}: handler must be callable")
        if self.timeout is not None and not self.timeout > 0:
            raise InvalidArgumentError(
                f"tool {self.name!r}: timeout must be a positive number of seconds or None"
            )
        # a read-only view, so a frozen Tool cannot change under a thread that declared it
        object.__setattr__(self, "input_schema", MappingProxyType(dict(self.input_schema)))

    def to_wire(self) -> dict[str, Any]:
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "inputSchema": _plain(self.input_schema),
        }


@dataclass(frozen=True)
class Toolset:
    """Tools declared together: in one namespace (recommended) or bare (``namespace=None``).

    A namespace keeps tool names apart from codex's built-in tools and tells the
    model what the group is about (``description``, at most 1024 characters).
    """

    namespace: str | None
    description: str
    tools: Sequence[Tool]

    def __post_init__(self) -> None:
        if self.namespace is not None:
            _check_name("namespace", self.namespace)
            if self.namespace in RESERVED_NAMESPACES or self.namespace.startswith("mcp__"):
                raise InvalidArgumentError(
                    f"namespace {self.namespace!r} is reserved (by the Responses API or by "
                    "codex); choose another, e.g. 'notebook' or 'myapp'"
                )
            if len(self.description) > _MAX_NAMESPACE_DESCRIPTION:
                raise InvalidArgumentError(
                    f"namespace {self.namespace!r}: the description is {len(self.description)} "
                    f"characters; at most {_MAX_NAMESPACE_DESCRIPTION}"
                )
        tools = tuple(self.tools)
        if not tools:
            raise InvalidArgumentError(
                f"toolset {self.namespace or '(bare)'!r} has no tools; declare at least one"
            )
        seen: set[str] = set()
        for tool in tools:
            if not isinstance(tool, Tool):
                raise InvalidArgumentError(
                    f"Toolset.tools holds Tool objects, not {type(tool).__name__}"
                )
            if tool.name in seen:
                raise InvalidArgumentError(
                    f"tool {qualified(self.namespace, tool.name)!r} is declared twice"
                )
            if self.namespace is None and tool.name in BUILTIN_TOOLS:
                raise InvalidArgumentError(
                    f"a bare tool named {tool.name!r} would be shadowed by codex's built-in "
                    "tool of that name (codex drops it silently); put it in a namespace"
                )
            seen.add(tool.name)
        object.__setattr__(self, "tools", tools)

    @property
    def names(self) -> frozenset[str]:
        """The qualified names of this set's tools (``namespace.tool``)."""
        return frozenset(qualified(self.namespace, tool.name) for tool in self.tools)

    def to_wire(self) -> list[dict[str, Any]]:
        """The ``dynamicTools`` entries for this set."""
        specs = [tool.to_wire() for tool in self.tools]
        if self.namespace is None:
            return specs
        return [
            {
                "type": "namespace",
                "name": self.namespace,
                "description": self.description,
                "tools": specs,
            }
        ]


class ToolRegistry:
    """The tools of one thread, looked up by (namespace, name). Immutable once built."""

    __slots__ = ("_by_name", "toolsets")

    def __init__(self, toolsets: Toolset | Iterable[Toolset]) -> None:
        sets = (toolsets,) if isinstance(toolsets, Toolset) else tuple(toolsets)
        by_name: dict[tuple[str | None, str], Tool] = {}
        namespaces: set[str | None] = set()
        for toolset in sets:
            if not isinstance(toolset, Toolset):
                raise InvalidArgumentError(
                    f"tools= takes a Toolset or a list of them, not {type(toolset).__name__}"
                )
            if toolset.namespace is not None and toolset.namespace in namespaces:
                raise InvalidArgumentError(f"namespace {toolset.namespace!r} is declared twice")
            namespaces.add(toolset.namespace)
            for tool in toolset.tools:
                key = (toolset.namespace, tool.name)
                if key in by_name:
                    raise InvalidArgumentError(
                        f"tool {qualified(*key)!r} is declared twice (in two bare toolsets)"
                    )
                by_name[key] = tool
        if not by_name:
            raise InvalidArgumentError("tools= needs at least one Toolset")
        self.toolsets = sets
        self._by_name = by_name

    @property
    def names(self) -> frozenset[str]:
        return frozenset(qualified(ns, name) for ns, name in self._by_name)

    def lookup(self, namespace: str | None, name: str) -> Tool | None:
        return self._by_name.get((namespace or None, name))

    def to_wire(self) -> list[dict[str, Any]]:
        return [spec for toolset in self.toolsets for spec in toolset.to_wire()]


def _plain(value: Any) -> Any:
    """Deep copy of a schema into plain dicts/lists (MappingProxyType is not JSON)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def names_from_specs(specs: Any) -> frozenset[str] | None:
    """Qualified tool names from stored ``dynamicTools`` specs (None if not a list)."""
    if specs is None:
        return frozenset()
    if not isinstance(specs, list):
        return None
    names: set[str] = set()
    for spec in specs:
        if not isinstance(spec, dict):
            continue
        if spec.get("type") == "namespace" and isinstance(spec.get("tools"), list):
            for tool in spec["tools"]:
                if isinstance(tool, dict) and isinstance(tool.get("name"), str):
                    names.add(qualified(str(spec.get("name")), tool["name"]))
        elif isinstance(spec.get("name"), str):
            names.add(spec["name"])
    return frozenset(names)
