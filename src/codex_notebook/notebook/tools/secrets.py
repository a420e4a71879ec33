"""Secrets never leave the kernel: names that look like credentials, strings that look like keys.

Two independent guards, both applied to everything a tool sends to the model:

1. **Credential names.** A variable (or dict key, data-frame column, ``key=value`` key) whose
   name looks like a credential — it has a *word* such as ``password``, ``token``, ``secret``,
   ``key``, ``auth``, ``credential`` (see :data:`CREDENTIAL_WORDS`), split on ``_``, digits and
   camelCase, case-insensitive — has its *value* replaced by :data:`HIDDEN_VALUE`; its type is
   still shown.  ``monkey``, ``keyboard``, ``keys``, ``tokens``, ``tokenizer``, ``author`` are
   not credentials; neither are ``primary_key``-style data keys (see
   :data:`NON_SECRET_KEY_QUALIFIERS`).
   Functions, classes and modules keep their value even under such a name (``get_token`` is
   code, not a credential); their text still goes through the scrubber.
2. **Key-looking strings.** :class:`Scrubber` replaces, anywhere in a text, the formats of real
   API keys (OpenAI ``sk-…``, AWS ``AKIA…``, GitHub ``ghp_…``/``github_pat_…``, GitLab, Slack
   ``xox…`` and webhooks, Google ``AIza…``, Stripe, Hugging Face ``hf_…``), JSON Web Tokens,
   ``Bearer`` tokens and ``Authorization:`` headers, PEM private keys, passwords in URLs
   (``scheme://user:pw@host``), values in ``key=value`` / ``"key": "value"`` contexts whose key
   is a credential name, and the exact values of credential-named variables and environment
   variables it was built with.

Decided and tested: identifiers that only *identify* are not secrets — UUIDs, git commit SHAs,
``sha256`` digests and other long hex strings outside a credential ``key=value`` context are
left alone, so the agent can still read data frames of ids and hashes.  Next to a credential
name, a quoted value (4+ characters) is always redacted; a bare value after ``:`` (YAML, JSON,
HTTP headers) too; a bare value after ``=`` is kept when it reads as code — an identifier or
attribute chain without digits, shorter than 16 characters (``password=pw``,
``token=self.token``), or a call or subscript (``token = get_token()``,
``api_key = os.environ["KEY"]``).  ``None``/``null``/``true``/``false`` are kept.

Not built on :func:`codex_notebook.errors.redact`: its ``sk-`` rule has no left boundary
(``redact("task-management-system")`` gives ``"ta[REDACTED]"``), which would garble ordinary
data shown to the model; its ``key=value`` and ``Bearer`` rules are covered here.  ``redact``
could delegate to :class:`Scrubber` instead.

Everything here is pure; a :class:`Scrubber` is immutable and safe to share between threads.
"""

from __future__ import annotations

import itertools
import os
import re
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Final

__all__ = [
    "CREDENTIAL_WORDS",
    "HIDDEN_CELL",
    "HIDDEN_VALUE",
    "NON_SECRET_KEY_QUALIFIERS",
    "REDACTED",
    "Scrubber",
    "hides_value",
    "is_credential_name",
    "name_words",
]

#: What a key-looking string becomes.  Same marker as :func:`codex_notebook.errors.redact`.
REDACTED: Final = "[REDACTED]"
#: What the value of a credential-named variable, dict entry or attribute becomes.
HIDDEN_VALUE: Final = "<hidden: the name looks like a credential>"
#: What each cell of a credential-named data-frame column becomes (short: it sits in a table).
HIDDEN_CELL: Final = "<hidden>"

#: Name words (lower case) that mark a credential.  Matched against whole words of the name,
#: plus the compound forms in ``_CREDENTIAL_SUFFIXES`` (``authtoken``, ``dbpassword``).
CREDENTIAL_WORDS: Final = frozenset(
    {
        "key",
        "apikey",
        "privkey",
        "token",
        "secret",
        "secrets",
        "password",
        "passwd",
        "passphrase",
        "credential",
        "credentials",
        "creds",
        "auth",
        "oauth",
        "authorization",
        "bearer",
        "cookie",
        "cookies",
        "jwt",
        "sessionid",
        "dsn",
    }
)
_CREDENTIAL_SUFFIXES: Final = ("password", "passwd", "secret", "token", "apikey", "credential")
#: Words that mark a credential only as the last word of a name (``db_pass``, not ``pass_rate``).
#: The shell's ``PWD`` is a directory: a lone ``pwd`` is not a credential, ``db_pwd`` is; a
#: lone ``pw`` is (``pw = getpass()``).
_CREDENTIAL_LAST_WORDS: Final = frozenset({"pass", "pw", "pwd"})
_CREDENTIAL_ALONE: Final = frozenset({"pw"})
#: A last word that makes a name an exception class, not a credential: ``KeyError``,
#: ``TokenExpiredException`` (everything else stays hidden: a wrong guess only hides a value).
_NOT_A_VALUE_WORDS: Final = frozenset({"error", "errors", "exception", "warning"})
#: A word before ``key`` that makes it a data key, not a credential (``primary_key``, ``sort_key``).
NON_SECRET_KEY_QUALIFIERS: Final = frozenset(
    {
        "primary",
        "foreign",
        "sort",
        "sorting",
        "join",
        "group",
        "partition",
        "cache",
        "lookup",
        "index",
        "row",
        "column",
        "col",
        "dict",
        "map",
        "merge",
        "composite",
        "unique",
        "hash",
        "shard",
        "dedup",
        "match",
        "natural",
        "surrogate",
        "cluster",
        "hot",
    }
)

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def name_words(name: str) -> list[str]:
    """Split an identifier into lower-case words: ``OPENAI_API_KEY``, ``apiKey``, ``db-pass2``."""
    return [w.lower() for w in _WORD.findall(name)]


def is_credential_name(name: str) -> bool:
    """Does this name (a variable, a dotted attribute, a dict key, a column) look like a credential?

    Only the last segment of a dotted name counts: ``config.api_key`` yes, ``token.count`` no.
    """
    last = re.split(r"[.\[\]'\"]+", name.strip(".[]'\" "))[-1] if name else ""
    words = name_words(last)
    if len(words) > 1 and words[-1] in _NOT_A_VALUE_WORDS:
        return False  # KeyError: names an exception, not a credential
    for i, word in enumerate(words):
        if word == "key" and i > 0 and words[i - 1] in NON_SECRET_KEY_QUALIFIERS:
            continue
        if word in CREDENTIAL_WORDS:
            return True
        if len(word) > 6 and word.endswith(_CREDENTIAL_SUFFIXES):
            return True
    if len(words) == 1:
        return words[0] in _CREDENTIAL_ALONE
    return len(words) > 1 and words[-1] in _CREDENTIAL_LAST_WORDS


def hides_value(name: str, value: object) -> bool:
    """Should this variable's value be replaced by :data:`HIDDEN_VALUE`?

    Code (functions, classes, modules) keeps its value: ``get_token`` is not a credential.
    """
    try:
        if isinstance(value, _CODE_TYPES):
            return False
    except Exception:  # a proxy whose __class__ raises: the name decides
        pass
    return is_credential_name(name)


_CODE_TYPES: Final = (
    types.ModuleType,
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    staticmethod,
    classmethod,
    property,
)


# --- key-looking strings -------------------------------------------------------------------


def _looks_random(token: str) -> bool:
    """Real keys are random: letters and digits mixed.  ``sk-learn-tutorial`` is prose."""
    body = token.split("-", 1)[-1]
    has_digit = any(c.isdigit() for c in body)
    has_alpha = any(c.isalpha() for c in body)
    has_upper = any(c.isupper() for c in body)
    return has_digit and has_alpha and (has_upper or len(body) >= 32)


def _whole(match: re.Match[str]) -> str:
    return REDACTED


def _if_random(match: re.Match[str]) -> str:
    return REDACTED if _looks_random(match.group(0)) else match.group(0)


def _keep_group1(match: re.Match[str]) -> str:
    return match.group(1) + REDACTED


def _url_password(match: re.Match[str]) -> str:
    return match.group(1) + REDACTED + "@"


# A key starts where a name starts (not right after a letter); the key and a bare value are
# taken whole ("(?=(?P<x>…))(?P=x)", an atomic group Python 3.10 can read): backtracking into
# either could never find another match (a separator cannot occur inside a key, and a
# shorter value fails the same lookahead), only cost ~500 steps at every character.
_KV = re.compile(
    r"""(?<![A-Za-z_])(?P<key>[A-Za-z_](?=(?P<rest>[A-Za-z0-9_.-]{0,255}))(?P=rest))
        (?P<sep>["']?\]?[ \t]{0,3}(?:[:=]|=>)[ \t]{0,3})
        (?:
            (?P<q>["'])(?P<quoted>[^"'\n]{1,512}?)(?P=q)
          | (?=(?P<bare>[A-Za-z0-9+/=_.~-]{4,512}))(?P=bare)(?![A-Za-z0-9+/=_.~(\[-])
        )""",
    re.VERBOSE,
)


def _kv(match: re.Match[str]) -> str:
    key = match.group("key")
    if not is_credential_name(key):
        return match.group(0)
    quoted = match.group("quoted")
    if quoted is not None:
        if len(quoted) < 4 or quoted.lower() in ("none", "null", "true", "false"):
            return match.group(0)
        q = match.group("q")
        return f"{key}{match.group('sep')}{q}{REDACTED}{q}"
    bare = match.group("bare")
    if bare.lower() in ("none", "null", "true", "false", "nil"):
        return match.group(0)
    # After ``=`` a bare word may be code (``password=pw``, ``token=self.token``): keep
    # identifiers and attribute chains without digits.  After ``:`` (YAML, JSON, headers)
    # a bare value is a literal.
    code_like = _IDENTIFIER_CHAIN.fullmatch(bare) is not None and len(bare) < 16
    if "=" in match.group("sep") and code_like:
        return match.group(0)
    return f"{key}{match.group('sep')}{REDACTED}"


_IDENTIFIER_CHAIN = re.compile(r"[A-Za-z_][A-Za-z_]*(?:\.[A-Za-z_][A-Za-z_]*)*")


#: (name, pattern, replacement) — applied in order.  Every pattern is linear (bounded
#: repetitions, no nested quantifiers) so scrubbing a long text stays cheap.
_PATTERNS: Final[tuple[tuple[str, re.Pattern[str], Callable[[re.Match[str]], str]], ...]] = (
    (
        "pem-private-key",
        re.compile(
            r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
            r"(?:-----END [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|\Z)"
        ),
        _whole,
    ),
    (
        "jwt",
        re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
        _whole,
    ),
    ("openai-style sk-", re.compile(r"(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{20,256}"), _if_random),
    (
        "aws-access-key-id",
        re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b"),
        _whole,
    ),
    (
        "github",
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b"),
        _whole,
    ),
    ("gitlab", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,64}"), _whole),
    ("slack", re.compile(r"\bxox[abeoprs]-[A-Za-z0-9-]{10,255}"), _whole),
    (
        "slack-webhook",
        re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9_/-]{8,255}"),
        _whole,
    ),
    ("google-api-key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}"), _whole),
    ("stripe", re.compile(r"\b[rs]k_(?:live|test)_[0-9A-Za-z]{16,255}"), _whole),
    ("huggingface", re.compile(r"\bhf_[A-Za-z0-9]{30,64}\b"), _whole),
    (
        "authorization-header",
        re.compile(
            r"(?i)(\bauthorization[\"']?[ \t]{0,3}[:=][ \t]{0,3}[\"']?"
            r"(?:basic|bearer|token|digest)?[ \t]{0,3})[^\s\"',;]{8,4096}"
        ),
        _keep_group1,
    ),
    ("bearer", re.compile(r"(?i)(\bbearer[ \t]{1,3})[A-Za-z0-9._~+/-]{12,4096}=*"), _keep_group1),
    (
        "url-password",
        re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,20}://[^\s:/@]{1,256}:)[^\s@/]{1,256}@"),
        _url_password,
    ),
    ("credential key=value", _KV, _kv),
)


class Scrubber:
    """Replace secrets in text bound for the model.

    Built once per answer (cheap): with no arguments it knows the patterns and the values of
    credential-named environment variables; :meth:`for_namespace` adds the values of the
    user's credential-named variables (and of credential keys in top-level dicts), so a secret
    that was printed, or appears inside another object's repr, is replaced too.
    """

    #: Exact values shorter than this are not replaced (too many false hits on ordinary text).
    MIN_KNOWN_LENGTH: Final = 6
    #: Values found inside containers stop being collected at this many known values.
    MAX_KNOWN: Final = 2_000

    def __init__(self, known: Iterable[str] = (), *, environ: Mapping[str, str] | None = None):
        env = os.environ if environ is None else environ
        values = {v for v in known if isinstance(v, str) and len(v) >= self.MIN_KNOWN_LENGTH}
        for name, value in env.items():
            if len(value) >= 8 and is_credential_name(name):
                values.add(value)
        self._known = (
            re.compile("|".join(re.escape(v) for v in sorted(values, key=len, reverse=True)))
            if values
            else None
        )
        self.known_count = len(values)

    @classmethod
    def for_namespace(
        cls,
        items: Iterable[tuple[str, object]],
        *,
        environ: Mapping[str, str] | None = None,
    ) -> Scrubber:
        """A scrubber that also knows the secret values held in a namespace snapshot.

        The strings (and UTF-8 bytes) a credential-named variable holds, itself or inside
        builtin containers (``credentials = {"github": "…"}``), and those under credential-named
        keys of dicts at any depth.  Only exact builtin types are walked (no user code runs),
        at most :data:`_WALK_DEPTH` deep and :data:`_WALK_NODES` values per variable, until
        :data:`MAX_KNOWN` values are known (each one costs every scrub a little); the values
        of credential-named string variables always.  Call it on the kernel's main thread
        (containers may change).
        """
        items = list(items)
        known: list[str] = []
        for name, value in items:
            if is_credential_name(name):
                known.extend(_texts(value))
        for name, value in items:
            if len(known) >= cls.MAX_KNOWN:
                break
            if type(value) not in (str, bytes):
                _collect(value, is_credential_name(name), known, [_WALK_NODES], _WALK_DEPTH)
        return cls(known, environ=environ)

    def __call__(self, text: str) -> str:
        """The text with every secret replaced by :data:`REDACTED`."""
        if not text:
            return text
        if self._known is not None:
            text = self._known.sub(REDACTED, text)
        for _name, pattern, replace in _PATTERNS:
            text = pattern.sub(replace, text)
        return text


#: How deep, and how many values per variable, :meth:`Scrubber.for_namespace` looks.
_WALK_DEPTH: Final = 4
_WALK_NODES: Final = 1_000
_SEQUENCES: Final = (list, tuple, set, frozenset)


def _collect(value: object, secret: bool, known: list[str], left: list[int], depth: int) -> None:
    """Add to ``known`` the strings ``value`` holds in a secret place (``secret``: the value
    itself is under a credential name).  ``left[0]`` counts down the values looked at."""
    if left[0] <= 0:
        return
    left[0] -= 1
    kind = type(value)
    if kind is str or kind is bytes:
        if secret and len(known) < Scrubber.MAX_KNOWN:
            known.extend(_texts(value))
        return
    if depth <= 0:
        return
    if kind is dict and isinstance(value, dict):
        for key, inner in list(itertools.islice(value.items(), left[0])):
            inner_secret = secret or (isinstance(key, str) and is_credential_name(key))
            _collect(inner, inner_secret, known, left, depth - 1)
    elif secret and kind in _SEQUENCES and isinstance(value, _SEQUENCES):
        for inner in list(itertools.islice(value, left[0])):
            _collect(inner, True, known, left, depth - 1)


def _texts(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, bytes):
        try:
            return [value.decode()]
        except UnicodeDecodeError:
            return []
    return []
