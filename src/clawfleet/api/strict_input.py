"""What every route refuses before FastAPI reads its input: request bodies that are not strict
JSON, and NUL bytes in path and query parameters.

``json.loads``, which FastAPI uses, lets the last of two equal keys win, so a body could say
``kind`` twice and mean whichever one a reviewer did not read; it takes ``NaN`` and
``Infinity``, which are not JSON; and invalid UTF-8 or a body nested past the recursion limit
come out of it as a bare 400 without a code. A NUL byte in a name or a filter reaches the
database, and PostgreSQL refuses it with an error that was a 500.

Every route of the API is a ``StrictRoute``: its JSON body goes through ``decode_json_body`` and
its parameters through ``check_parameters``, and each refusal is a 422 ``invalid`` whose one
field error names where (``kind``, ``spec.env.0``, ``body`` or the parameter) and what (a field
code of docs/errors.md).

The hot path is one ``json.loads`` with a hook that compares a dict's length to its pairs';
the path of a duplicate is looked for only once one is known to be there.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from clawfleet.core.errors import FieldError, InvalidInput


class _DuplicateKey(Exception):
    pass


class _NotJson(Exception):
    pass


class _Duplicated(dict[str, Any]):
    """A decoded object in which ``key`` came twice (only built to find the key's path)."""

    def __init__(self, pairs: list[tuple[str, Any]], key: str) -> None:
        super().__init__(pairs)
        self.key = key


def _first_repeat(pairs: list[tuple[str, Any]]) -> str:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return key
        seen.add(key)
    raise AssertionError("no repeated key")  # pragma: no cover - only called with one


def _strict_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _DuplicateKey
    return obj


def _marking_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    return obj if len(obj) == len(pairs) else _Duplicated(pairs, _first_repeat(pairs))


def _no_constant(name: str) -> Any:
    raise _NotJson(f"{name} is not a JSON value; send a number or a string")


def _decode(text: str, hook: Callable[[list[tuple[str, Any]]], dict[str, Any]]) -> Any:
    return json.loads(text, object_pairs_hook=hook, parse_constant=_no_constant)


def _duplicate_path(value: Any) -> str:
    """The dotted path of the first repeated key in ``value`` (decoded with
    ``_marking_object``), in document order; walked without recursion, as it may be deep."""
    pending: list[tuple[str, Any]] = [("", value)]
    while pending:
        path, value = pending.pop()
        prefix = f"{path}." if path else ""
        if isinstance(value, _Duplicated):
            return prefix + value.key
        if isinstance(value, dict):
            pending += reversed([(prefix + key, item) for key, item in value.items()])
        elif isinstance(value, list):
            pending += reversed([(f"{prefix}{index}", item) for index, item in enumerate(value)])
    raise AssertionError("no repeated key")  # pragma: no cover - only called with one


def _refused(path: str, message: str, code: str) -> InvalidInput:
    return InvalidInput(f"{path}: {message}", [FieldError(path, message, code)])


def decode_json_body(body: bytes) -> Any:
    """The JSON value of a request body; InvalidInput naming the place if it is not strict JSON
    (UTF-8, no repeated key in an object, no NaN or Infinity, nested less than Python's
    recursion limit, no number longer than Python converts)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _refused("body", f"not valid UTF-8 (at byte {exc.start})", "invalid-utf8") from exc
    try:
        try:
            return _decode(text, _strict_object)
        except _DuplicateKey:
            path = _duplicate_path(_decode(text, _marking_object))  # or a later error
            raise _refused(path, "this key appears twice in its object", "duplicate-key") from None
    except _NotJson as exc:
        raise _refused("body", str(exc), "invalid-json") from exc
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise _refused("body", f"not valid JSON: {exc.msg} ({where})", "invalid-json") from exc
    except RecursionError as exc:
        raise _refused("body", "nested too deeply to decode", "too-deep") from exc
    except ValueError as exc:  # a number of more digits than int() converts
        raise _refused("body", f"holds an unusable number: {exc}", "invalid-json") from exc


def _is_json(content_type: str | None) -> bool:
    """As FastAPI decides whether to decode a body as JSON."""
    if content_type is None:
        return False
    media = content_type.partition(";")[0].strip().lower()
    kind, _, subtype = media.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def check_parameters(parameters: Iterable[tuple[str, str]]) -> None:
    """InvalidInput naming the first parameter (a name and its value) that holds a NUL byte."""
    for name, value in parameters:
        if "\x00" in value:
            raise _refused(name, "must not hold a NUL byte", "nul-byte")


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_strict_json"):
            self._strict_json = decode_json_body(await self.body())
        return self._strict_json


class StrictRoute(APIRoute):
    """A route whose parameters are checked by ``check_parameters`` and whose JSON body is
    decoded by ``decode_json_body``, before FastAPI reads either (a body error there would be a
    bare 400); the InvalidInput is answered by the problem handlers, as a 422."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        takes_body = self.body_field is not None

        async def strict_handler(request: Request) -> Response:
            strict = StrictJsonRequest(request.scope, request.receive)
            check_parameters([*strict.path_params.items(), *strict.query_params.multi_items()])
            if takes_body and _is_json(strict.headers.get("content-type")):
                body = await strict.body()
                if body:
                    await strict.json()
            return await handler(strict)

        return strict_handler
