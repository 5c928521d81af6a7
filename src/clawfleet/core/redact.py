"""Redaction of secret values and tokens from text that leaves a process: log lines, run events,
run output and error messages.

Secrets are kept out of those places by construction (DESIGN.md §4 rule 6), but an agent program
may print its environment and an exception may quote a header. A ``Redactor`` is the last line of
defence: it knows the sensitive values this process holds and replaces every occurrence with
``[REDACTED]``, together with their base64 forms (a value inside a base64 stream, e.g. in a
``Basic`` header, at any alignment). Independently of registered values it always redacts
ClawFleet bearer tokens (``cf_`` + 43 urlsafe base64 characters) and the credential after
``Bearer``.

The registered values are matched by one compiled regular expression, built lazily as a trie
(so the cost per character does not grow with the number of values) and rebuilt after a change.

The process-wide default redactor is what the logging filter (``core.logging``) uses. Whoever
comes to hold a secret value registers it there::

    from clawfleet.core.redact import register_secret
    register_secret(value)          # e.g. after decrypting a secretEnv value for a launch

Values shorter than ``MIN_SECRET_LENGTH`` are ignored: redacting every "abc" would wreck logs
and protect nothing.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[REDACTED]"
MIN_SECRET_LENGTH = 6
_MIN_DERIVED_LENGTH = 8  # base64 fragments shorter than this match too much unrelated text

# secrets.token_urlsafe(32) is 43 characters; allow longer in case the format grows.
TOKEN_RE = re.compile(r"cf_[A-Za-z0-9_\-]{43,}")
BEARER_RE = re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/\-]{8,}=*")
AUTHORIZATION_RE = re.compile(
    r"(?i)(\bauthorization[\"']?\s*[:=]\s*[\"']?(?:basic|bearer|digest|token)\s+)[^\s\"',;]{8,}"
)


class Redactor:
    """A set of sensitive strings and the means to blank them out of text and JSON-like values.

    ``add``/``discard`` may be called from any thread; ``redact`` reads a snapshot of the
    compiled pattern and never blocks on a rebuild in progress elsewhere.
    """

    def __init__(self, values: Iterable[str] = (), *, min_length: int = MIN_SECRET_LENGTH) -> None:
        self.min_length = min_length
        self._values: set[str] = set()
        self._lock = threading.Lock()
        self._pattern: re.Pattern[str] | None = None
        self._stale = False
        self.add(*values)

    def __repr__(self) -> str:  # never the values
        return f"Redactor({len(self._values)} values)"

    def __len__(self) -> int:
        return len(self._values)

    def add(self, *values: str) -> None:
        """Register sensitive values (and their base64 forms). Values shorter than
        ``min_length``, and non-strings, are ignored. Idempotent."""
        with self._lock:
            before = len(self._values)
            for value in values:
                if isinstance(value, str) and len(value) >= self.min_length:
                    self._values.add(value)
            self._stale = self._stale or len(self._values) != before

    def discard(self, *values: str) -> None:
        """Forget values (e.g. a rotated-out secret that no process holds any more)."""
        with self._lock:
            before = len(self._values)
            self._values.difference_update(values)
            self._stale = self._stale or len(self._values) != before

    def redact(self, text: str) -> str:
        """``text`` with every registered value, its base64 forms and every bearer token
        replaced by ``[REDACTED]``. Overlapping occurrences become one ``[REDACTED]``."""
        pattern = self._compiled()
        if pattern is not None:
            text = _replace_all(pattern, text)
        text = TOKEN_RE.sub(REDACTED, text)
        text = BEARER_RE.sub(_keep_prefix, text)
        return AUTHORIZATION_RE.sub(_keep_prefix, text)

    def redact_obj(self, value: Any) -> Any:
        """A copy of a JSON-like value (dicts, lists, tuples, strings) with every string, keys
        included, redacted. Other values (numbers, booleans, None) come back unchanged."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, Mapping):
            return {
                self.redact(k) if isinstance(k, str) else k: self.redact_obj(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.redact_obj(item) for item in value]
        return value

    def _compiled(self) -> re.Pattern[str] | None:
        if not self._stale:
            return self._pattern
        with self._lock:
            if self._stale:
                needles: set[str] = set()
                for value in self._values:
                    needles.add(value)
                    needles.update(_base64_forms(value))
                self._pattern = _compile(needles) if needles else None
                self._stale = False
            return self._pattern


def _keep_prefix(match: re.Match[str]) -> str:
    return match.group(1) + REDACTED


def _replace_all(pattern: re.Pattern[str], text: str) -> str:
    parts: list[str] = []
    pos = 0
    while (match := pattern.search(text, pos)) is not None:
        start, end = match.span()
        # A value that starts inside this one and runs past it would leak its tail.
        probe = start + 1
        while probe < end:
            longer = pattern.match(text, probe)
            if longer is not None and longer.end() > end:
                end = longer.end()
            probe += 1
        parts += (text[pos:start], REDACTED)
        pos = end
    if not parts:
        return text
    parts.append(text[pos:])
    return "".join(parts)


def _compile(needles: set[str]) -> re.Pattern[str]:
    try:
        return re.compile(_trie_regex(needles))
    except (RecursionError, re.error):  # values nested as prefixes of each other, very deep
        ordered = sorted(needles, key=len, reverse=True)  # longest first: the longest wins
        return re.compile("|".join(re.escape(needle) for needle in ordered))


def _base64_forms(value: str) -> set[str]:
    """What ``value`` looks like inside standard or urlsafe base64, at each of the three byte
    alignments: the characters that depend on the value's bytes alone."""
    raw = value.encode()
    forms: set[str] = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        for shift in range(3):
            encoded = encode(b"\0" * shift + raw).decode()
            first = -(-8 * shift // 6)  # characters touched by the filler bytes
            last = (8 * (shift + len(raw))) // 6  # characters complete before the tail
            forms.add(encoded[first:last])
        forms.add(encode(raw).decode())  # with its padding, when it stands alone
    return {form for form in forms if len(form) >= _MIN_DERIVED_LENGTH}


def _trie_regex(words: Iterable[str]) -> str:
    """One regular expression matching any of ``words``, the longest at each position, as a
    prefix trie: the matcher follows one branch per character instead of trying every word."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}  # a word ends here
    return _trie_node_regex(trie)


def _escape(char: str) -> str:
    return char if char.isalnum() or char == "_" else re.escape(char)


def _trie_node_regex(node: dict[str, Any]) -> str:
    chain: list[str] = []
    # Follow single-child chains iteratively: long values must not nest (or recurse) per char.
    while len(node) == 1 and "" not in node:
        char, node = next(iter(node.items()))
        chain.append(_escape(char))
    ends_here = "" in node
    branches = [
        _escape(char) + _trie_node_regex(child) for char, child in sorted(node.items()) if char
    ]
    if not branches:
        return "".join(chain)
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if ends_here:
        body = f"(?:{body})?"  # greedy: the longer word wins, the shorter one still matches
    return "".join(chain) + body


_default = Redactor()


def default_redactor() -> Redactor:
    """The process-wide redactor used by the logging filter."""
    return _default


def register_secret(value: str) -> None:
    """Make the process-wide redactor blank out ``value`` (and its base64 forms) from now on."""
    _default.add(value)


def register_secrets(values: Iterable[str]) -> None:
    """``register_secret`` for many values at once (one pattern rebuild)."""
    _default.add(*values)
