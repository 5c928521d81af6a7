"""The Redactor and the logging filter, by planting values and looking for them in the output."""

from __future__ import annotations

import base64
import io
import logging
import secrets
from collections.abc import Iterator

import pytest

from clawfleet.core.logging import RedactingFilter, configure_logging
from clawfleet.core.redact import (
    REDACTED,
    Redactor,
    default_redactor,
    register_secret,
    register_secrets,
)


def planted() -> str:
    return "pw-" + secrets.token_urlsafe(12)


def test_every_one_of_many_values_is_redacted() -> None:
    values = [planted() for _ in range(500)]
    redactor = Redactor(values)
    text = " | ".join(f"line {n}: {value}." for n, value in enumerate(values))
    out = redactor.redact(text)
    assert not any(value in out for value in values)
    assert out.count(REDACTED) == 500
    assert out.startswith(f"line 0: {REDACTED}. | line 1: ")
    assert redactor.redact("nothing to see here") == "nothing to see here"


def test_values_added_later_are_picked_up_and_discarded_ones_dropped() -> None:
    first, second = planted(), planted()
    redactor = Redactor([first])
    assert redactor.redact(second) == second
    redactor.add(second)
    assert redactor.redact(f"{first} {second}") == f"{REDACTED} {REDACTED}"
    redactor.discard(first)
    assert redactor.redact(f"{first} {second}") == f"{first} {REDACTED}"


def test_overlapping_and_nested_values_leak_nothing() -> None:
    redactor = Redactor(["abcdefgh", "defghijk", "secret", "secretvalue"])
    # One value runs past another: both together are one redaction, no tail survives.
    assert redactor.redact("xx abcdefghijk yy") == f"xx {REDACTED} yy"
    # The longer of two values starting at the same place wins.
    assert redactor.redact("secretvalue secret secretval") == f"{REDACTED} {REDACTED} {REDACTED}val"


def test_values_are_literal_text_not_patterns() -> None:
    value = r"p@ss.w*rd(1)[x]\d+"
    redactor = Redactor([value])
    assert redactor.redact(f"a {value} b") == f"a {REDACTED} b"
    assert redactor.redact("p@ssXw*rd(1)[x]\\d+") == "p@ssXw*rd(1)[x]\\d+"


def test_short_and_non_string_values_are_ignored() -> None:
    redactor = Redactor(["abc", "", 12345678])  # type: ignore[list-item]
    assert len(redactor) == 0
    assert redactor.redact("abc 12345678") == "abc 12345678"


def test_base64_forms_are_redacted_at_any_alignment() -> None:
    value = "tok+en/" + secrets.token_hex(10)
    redactor = Redactor([value])
    raw = value.encode()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        assert redactor.redact(encode(raw).decode()) == REDACTED
        assert redactor.redact(encode(raw).decode().rstrip("=")) == REDACTED
        for prefix in (b"", b"u", b"us", b"user:"):
            blob = encode(prefix + raw + b"!tail").decode()
            out = redactor.redact(f"Basic {blob}")
            assert REDACTED in out, prefix
            assert blob not in out


def test_clawfleet_tokens_and_bearer_values_are_always_redacted() -> None:
    redactor = Redactor()  # nothing registered
    token = "cf_" + secrets.token_urlsafe(32)
    assert len(token) == 46
    assert redactor.redact(f"token={token}!") == f"token={REDACTED}!"
    assert redactor.redact(f"Authorization: Bearer {token}") == f"Authorization: Bearer {REDACTED}"
    other = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
    assert redactor.redact(f"bearer {other}") == f"bearer {REDACTED}"
    assert (
        redactor.redact('{"authorization": "Basic dXNlcjpwYXNzd29yZA=="}')
        == f'{{"authorization": "Basic {REDACTED}"}}'
    )
    # Ordinary prose and our own hint text survive.
    hint = "this endpoint needs a bearer token (Authorization: Bearer ...)"
    assert redactor.redact(hint) == hint


def test_redact_obj_walks_json_like_values() -> None:
    value = planted()
    redactor = Redactor([value])
    doc = {
        "text": f"echo {value}",
        "count": 3,
        "ratio": 0.5,
        "ok": True,
        "none": None,
        "args": [value, {"deep": (1, f"x{value}x")}],
        value: "as a key",
    }
    assert redactor.redact_obj(doc) == {
        "text": f"echo {REDACTED}",
        "count": 3,
        "ratio": 0.5,
        "ok": True,
        "none": None,
        "args": [REDACTED, {"deep": [1, f"x{REDACTED}x"]}],
        REDACTED: "as a key",
    }
    assert doc["text"] == f"echo {value}"  # a copy; the input is untouched
    assert redactor.redact_obj(42) == 42


def test_values_nested_as_deep_prefixes_still_work() -> None:
    redactor = Redactor(["x" * n for n in range(6, 450)])  # too deep for the trie: fallback
    assert redactor.redact("y" + "x" * 500 + "y") == f"y{REDACTED}y"


def test_repr_shows_no_value() -> None:
    value = planted()
    assert value not in repr(Redactor([value]))


# -- logging ---------------------------------------------------------------------------------


def _logger_with_filter(redactor: Redactor) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(redactor))
    logger = logging.getLogger(f"tests.redact.{secrets.token_hex(4)}")
    logger.propagate = False
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    return logger, stream


def test_the_logging_filter_redacts_messages_arguments_and_tracebacks() -> None:
    value = planted()
    logger, stream = _logger_with_filter(Redactor([value]))
    logger.info("resolved %s for %s", value, "agent")
    try:
        raise RuntimeError(f"could not use {value}")
    except RuntimeError:
        logger.exception("launch failed")
    logger.warning("header was Authorization: Bearer cf_%s", secrets.token_urlsafe(32))
    out = stream.getvalue()
    assert value not in out
    assert "cf_" not in out
    assert f"resolved {REDACTED} for agent" in out
    assert f"RuntimeError: could not use {REDACTED}" in out


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("json_format", [False, True])
def test_configured_logging_redacts_registered_secrets(
    json_format: bool, restore_root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    value, other = planted(), planted()
    register_secret(value)
    register_secrets([other])
    try:
        configure_logging("info", json_format=json_format)
        log = logging.getLogger("clawfleet.tests.redact")
        log.info("env has %s and %s", value, other)
        try:
            raise ValueError(value)
        except ValueError:
            log.exception("failed")
        for handler in logging.getLogger().handlers:
            handler.flush()
        err = capsys.readouterr().err
        assert err.count(REDACTED) >= 3
        assert value not in err and other not in err
    finally:
        default_redactor().discard(value, other)
