from __future__ import annotations

import pytest

from clawfleet.core.errors import ConfigurationError, PermanentError
from clawfleet.services.secret_box import SecretBox, generate_key


def test_seal_and_open_round_trip() -> None:
    box = SecretBox(generate_key())
    values = {"token": b"abc", "bin": bytes(range(256))}
    sealed = box.seal(values, bound_to="uid-1")
    assert b"abc" not in sealed
    assert box.open(sealed, bound_to="uid-1") == values
    assert box.seal(values, bound_to="uid-1") != sealed  # fresh nonce each time


def test_ciphertext_is_bound_to_its_secret_and_key() -> None:
    box = SecretBox(generate_key())
    sealed = box.seal({"k": b"v"}, bound_to="uid-1")
    with pytest.raises(PermanentError):
        box.open(sealed, bound_to="uid-2")
    with pytest.raises(PermanentError, match="secret key differs"):
        SecretBox(generate_key()).open(sealed, bound_to="uid-1")


def test_bad_keys_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError):
        SecretBox("short")
    with pytest.raises(ConfigurationError):
        SecretBox("!!!not base64!!!")
    assert "key" in repr(SecretBox(generate_key())) and "hidden" in repr(SecretBox(generate_key()))
