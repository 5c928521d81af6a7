"""Authenticated encryption of secret values at rest (AES-256-GCM).

Each ciphertext is bound to the secret's uid (associated data), so a row copied onto another
secret does not decrypt. Format: ``b"cf1" + nonce(12) + ciphertext``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from clawfleet.core.errors import ConfigurationError, PermanentError

_MAGIC = b"cf1"


def generate_key() -> str:
    """A new key, as the urlsafe base64 text kept in the key file or the setting."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


class SecretBox:
    def __init__(self, key_text: str) -> None:
        try:
            key = base64.urlsafe_b64decode(key_text.strip().encode())
        except (binascii.Error, ValueError) as exc:
            raise ConfigurationError("the secret key is not valid base64") from exc
        if len(key) != 32:
            raise ConfigurationError("the secret key must be 32 bytes (base64 of 32 random bytes)")
        self._aead = AESGCM(key)
        self._mac_key = hashlib.sha256(b"clawfleet-fingerprint\0" + key).digest()

    def derive(self, label: str) -> bytes:
        """A 32-byte key for another purpose (e.g. signing sessions), bound to this key."""
        return hmac.new(self._mac_key, b"derive\0" + label.encode(), hashlib.sha256).digest()

    def fingerprint(self, data: bytes) -> str:
        """A keyed digest of ``data``: comparable, but useless for guessing values offline."""
        return hmac.new(self._mac_key, data, hashlib.sha256).hexdigest()

    def seal(self, values: dict[str, bytes], *, bound_to: str) -> bytes:
        plain = json.dumps(
            {k: base64.b64encode(v).decode() for k, v in sorted(values.items())}
        ).encode()
        nonce = os.urandom(12)
        return _MAGIC + nonce + self._aead.encrypt(nonce, plain, bound_to.encode())

    def open(self, sealed: bytes, *, bound_to: str) -> dict[str, bytes]:
        if not sealed.startswith(_MAGIC):
            raise PermanentError("stored secret has an unknown format")
        nonce, body = sealed[3:15], sealed[15:]
        try:
            plain = self._aead.decrypt(nonce, body, bound_to.encode())
        except InvalidTag as exc:
            raise PermanentError(
                "cannot decrypt a stored secret: the secret key differs from the one it was "
                "written with"
            ) from exc
        return {k: base64.b64decode(v) for k, v in json.loads(plain).items()}

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"
