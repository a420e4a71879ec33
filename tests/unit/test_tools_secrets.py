"""Secrets never reach the model: credential names hide values, key-like strings are scrubbed.

Adversarial on both sides: real key formats in odd places must go, ordinary data (UUIDs, git
SHAs, digests, prose with "sk-", code that merely *mentions* a token) must stay.
"""

from __future__ import annotations

import types

import pytest

from codex_notebook.notebook.tools.answer import finish
from codex_notebook.notebook.tools.secrets import (
    REDACTED,
    Scrubber,
    hides_value,
    is_credential_name,
    name_words,
)

# Fabricated, format-valid keys (never real).
OPENAI = "sk-proj-Ab3dEf9hIj2kLm5nOp8qRs1tUv4wXy7zAb3dEf9hIj2k"
OPENAI_LEGACY = "sk-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v2W3x4"
AWS_ID = "AKIAIOSFODNN7EXAMPLE"
GITHUB = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
GITHUB_PAT = "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMN"
SLACK = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
GOOGLE = "AIza" + "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"
STRIPE = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
HF = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEA1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7r8s9t0\n"
    "u1v2w3x4y5z6A7B8C9D0E1F2G3H4I5J6K7L8M9N0O1P2Q3R4S5T6U7V8\n"
    "-----END RSA PRIVATE KEY-----"
)


@pytest.fixture
def scrub() -> Scrubber:
    return Scrubber(environ={})


# --- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "api_key",
        "OPENAI_API_KEY",
        "apiKey",
        "APIKey",
        "token",
        "github_token",
        "accessToken",
        "authtoken",
        "secret",
        "client_secret",
        "password",
        "DB_PASSWORD",
        "dbpassword",
        "passwd",
        "db_pass",
        "db_pwd",
        "pw",  # pw = getpass.getpass()
        "credentials",
        "aws_creds",
        "auth",
        "oauth_state",
        "private_key",
        "session_cookie",
        "config.api_key",
        'os.environ["OPENAI_API_KEY"]',
    ],
)
def test_credential_names_are_recognised(name: str) -> None:
    assert is_credential_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "monkey",
        "keyboard",
        "keys",
        "tokens",
        "tokenizer",
        "max_tokens",
        "author",
        "authors",
        "primary_key",
        "sort_key",
        "join_key",
        "pass_rate",
        "PWD",
        "OLDPWD",
        "df",
        "token.count",
        "",
    ],
)
def test_ordinary_names_are_not_credentials(name: str) -> None:
    assert not is_credential_name(name)


def test_names_split_on_underscores_digits_and_camel_case() -> None:
    assert name_words("myAPIKey2_value") == ["my", "api", "key", "2", "value"]


def test_a_credential_named_string_hides_its_value() -> None:
    assert hides_value("api_key", "abc")
    assert hides_value("token_count", 3)


def test_code_under_a_credential_name_keeps_its_value() -> None:
    def get_token() -> str:
        return "x"

    assert not hides_value("get_token", get_token)
    assert not hides_value("TokenBucket", type("TokenBucket", (), {}))
    assert not hides_value("secrets", types.ModuleType("secrets"))


# --- key formats ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "secret",
    [OPENAI, OPENAI_LEGACY, AWS_ID, GITHUB, GITHUB_PAT, SLACK, GOOGLE, STRIPE, HF, JWT],
)
@pytest.mark.parametrize(
    "template",
    [
        "{}",
        "key is {} ok",
        "'{}'",
        '{{"k": "{}"}}',
        "x={}",
        "(({}))",
        "url?x={}&y=1",
        "line1\n{}\nline3",
    ],
)
def test_key_formats_are_scrubbed_anywhere(scrub: Scrubber, secret: str, template: str) -> None:
    text = template.format(secret)
    cleaned = scrub(text)
    assert secret[:12] not in cleaned  # not even a recognisable prefix
    assert REDACTED in cleaned


def test_a_pem_private_key_block_is_scrubbed_whole(scrub: Scrubber) -> None:
    cleaned = scrub(f"key:\n{PEM}\nafter")
    assert "MIIEowIBAAKCAQEA" not in cleaned
    assert "BEGIN RSA PRIVATE KEY" not in cleaned
    assert cleaned.endswith("after")


def test_a_truncated_pem_block_is_scrubbed_to_the_end(scrub: Scrubber) -> None:
    cleaned = scrub(PEM[:90])
    assert "MIIEow" not in cleaned


def test_a_bearer_token_keeps_the_word_bearer(scrub: Scrubber) -> None:
    cleaned = scrub("curl -H 'Authorization: Bearer abcdef0123456789abcdef'")
    assert "abcdef0123456789abcdef" not in cleaned
    assert "Bearer" in cleaned or "Authorization" in cleaned


def test_basic_auth_header_is_scrubbed(scrub: Scrubber) -> None:
    assert "dXNlcjpwYXNzd29yZA==" not in scrub("Authorization: Basic dXNlcjpwYXNzd29yZA==")


def test_password_in_a_url_is_scrubbed_and_the_rest_kept(scrub: Scrubber) -> None:
    cleaned = scrub("engine = create_engine('postgresql://alice:s3cr3t-pw@db.local:5432/prod')")
    assert "s3cr3t-pw" not in cleaned
    assert "postgresql://alice:" in cleaned and "@db.local:5432/prod" in cleaned


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ('password = "hunter2"', "hunter2"),
        ("PASSWORD='correct horse battery'", "correct horse battery"),
        ('{"api_key": "abcd1234"}', "abcd1234"),
        ("{'client_secret': 'zz-top-secret'}", "zz-top-secret"),
        ('os.environ["OPENAI_API_KEY"] = "plainvalue99"', "plainvalue99"),
        ("token=abc123def456", "abc123def456"),
        ("db_password: mysecretpw", "mysecretpw"),
        ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
        ("secret => 'rubyhash1'", "rubyhash1"),
    ],
)
def test_credential_key_value_literals_are_scrubbed(
    scrub: Scrubber, text: str, secret: str
) -> None:
    assert secret not in scrub(text)


@pytest.mark.parametrize(
    "text",
    [
        "token = get_token()",
        'api_key = os.environ["OPENAI_API_KEY"]',
        "password = getpass.getpass()",
        "token=self.token",
        "password=None",
        '"token": null',
        "def login(password: str) -> None:",
        "key=lambda row: row[1]",
    ],
)
def test_code_that_mentions_credentials_is_kept(scrub: Scrubber, text: str) -> None:
    assert scrub(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "id 123e4567-e89b-12d3-a456-426614174000 matched",
        "fixed in commit 3ebd4be5f0a9c2d1e8b7a6f5c4d3e2f1a0b9c8d7",
        "sha256=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "md5: d41d8cd98f00b204e9800998ecf8427e",
        "see task-management-system and disk-usage-report-2024",
        "the sk-learn tutorial-for-beginners-part-two",
        "we use scikit-learn and a Bearer bond",
        "The basic idea is internationalization",
        "x = 0xDEADBEEFCAFEBABE1234567890ABCDEF",
        "monkey=banana12345, keyboard: qwerty99",
        "user_id=1234567890 and order_token_count=5",
    ],
)
def test_ordinary_data_is_not_scrubbed(scrub: Scrubber, text: str) -> None:
    assert scrub(text) == text


# --- known values -----------------------------------------------------------------------------


def test_values_of_credential_variables_are_scrubbed_wherever_they_appear() -> None:
    scrub = Scrubber.for_namespace(
        [("my_token", "plain-looking-value"), ("df", object())], environ={}
    )
    assert "plain-looking-value" not in scrub("printed: plain-looking-value!")


def test_credential_entries_of_a_dict_are_known_values() -> None:
    scrub = Scrubber.for_namespace([("config", {"db_password": "opensesame42"})], environ={})
    assert "opensesame42" not in scrub("connecting with opensesame42")


def test_strings_held_in_a_credential_named_container_are_known_values() -> None:
    held = {"github": "plain-looking-value-42", "aws": ["another-plain-value-7"]}
    scrub = Scrubber.for_namespace([("credentials", held)], environ={})
    text = scrub("copied: plain-looking-value-42 and another-plain-value-7")
    assert "plain-looking-value-42" not in text and "another-plain-value-7" not in text


def test_credential_entries_of_nested_dicts_are_known_values() -> None:
    scrub = Scrubber.for_namespace([("config", {"db": {"password": "opensesame42"}})], environ={})
    assert "opensesame42" not in scrub("connecting with opensesame42")


def test_known_values_of_a_huge_container_cost_a_bounded_walk() -> None:
    held = {"tokens": [f"value-number-{i:07d}" for i in range(1_000_000)]}
    scrub = Scrubber.for_namespace([("secrets", held)], environ={})
    assert scrub.known_count <= 1_000
    assert scrub("value-number-0000001") == "[REDACTED]"


def test_known_values_of_many_huge_containers_stay_few() -> None:
    # every known value costs each scrub a little: thousands would make answers slow
    held = [(f"secrets_{n}", [f"key-{n}-{i:05d}" for i in range(5_000)]) for n in range(50)]
    scrub = Scrubber.for_namespace([("db_password", "opensesame42"), *held], environ={})
    assert scrub.known_count <= 2_000
    assert "opensesame42" not in scrub("with opensesame42")  # direct ones always


def test_environment_credentials_are_known_values() -> None:
    scrub = Scrubber(environ={"MY_SERVICE_TOKEN": "env-value-xyz", "HOME": "/home/me"})
    assert "env-value-xyz" not in scrub("value env-value-xyz")
    assert scrub("/home/me") == "/home/me"


def test_short_known_values_are_not_replaced() -> None:
    scrub = Scrubber(["abc"], environ={})
    assert scrub("abcdef") == "abcdef"


# --- scrubbing and capping together -----------------------------------------------------------


@pytest.mark.parametrize("offset", [-30, -10, -1, 0, 1, 10, 30])
def test_a_key_cut_in_half_by_a_cap_is_never_half_shown(offset: int) -> None:
    limit = 1000
    text = "x" * (limit + offset) + " " + OPENAI + " " + "y" * 5000
    capped = finish(text, limit, scrub=Scrubber(environ={}))
    assert OPENAI[:10] not in capped


def test_scrubbing_a_huge_text_is_linear() -> None:
    huge = ("password=" + "a" * 100 + " ") * 20_000 + "sk-" * 50_000
    cleaned = Scrubber(environ={})(huge)
    assert len(cleaned) < len(huge)


@pytest.mark.parametrize("name", ["KeyError", "TokenError", "AuthenticationWarning"])
def test_exception_names_are_not_credentials(name: str) -> None:
    assert not is_credential_name(name)


def test_an_exception_naming_a_missing_column_keeps_the_column() -> None:
    assert Scrubber()("KeyError: 'Revenue'") == "KeyError: 'Revenue'"


@pytest.mark.timeout(30)  # ~60 s with a key pattern that backtracks at every letter
def test_scrubbing_hostile_text_stays_cheap() -> None:
    # A tool's error can quote a model argument whole (an ``inspect`` name), and it is
    # scrubbed on the kernel's main thread: 4 MB each of identifier runs, ``a=a=…`` and
    # unterminated quotes after a key
    scrub = Scrubber(environ={})
    for text in ("a" * 4_000_000, "a=" * 2_000_000, ('x="' + "y" * 600) * 6_600):
        assert scrub(text) == text
