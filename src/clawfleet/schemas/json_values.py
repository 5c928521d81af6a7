"""Free-form JSON in wire models (task data, agent config, template variables, what runners
report), bounded in depth and size.

These documents are stored and later encoded again for every read, claim and cancel; a document
nested 600 deep was accepted and then failed each of them with a 500. So a document is refused
at admission if it is deeper than ``MAX_JSON_DEPTH``, larger than ``MAX_JSON_BYTES`` encoded,
holds a NaN or an infinity (not JSON, and refused by PostgreSQL), or a NUL character in a key or
a string (PostgreSQL cannot store it). The walk is iterative, so no depth can exhaust the stack.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from clawfleet.domain.limits import MAX_JSON_BYTES, MAX_JSON_DEPTH


def _where(path: tuple[str | int, ...]) -> str:
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)
    text = text.lstrip(".") or "the top level"
    return text if len(text) <= 120 else text[:117] + "..."


def _walk(document: object) -> tuple[str, str] | None:
    stack: list[tuple[tuple[str | int, ...], object]] = [((), document)]
    while stack:
        path, value = stack.pop()
        if len(path) > MAX_JSON_DEPTH:
            where = _where(path[: MAX_JSON_DEPTH + 1])
            return "json_too_deep", f"is nested deeper than {MAX_JSON_DEPTH} levels (at {where})"
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and "\x00" in key:
                    return (
                        "nul_character",
                        f"holds a NUL character (U+0000) in a key at {_where(path)}",
                    )
                stack.append(((*path, key), item))
        elif isinstance(value, list):
            stack.extend(((*path, index), item) for index, item in enumerate(value))
        elif isinstance(value, str) and "\x00" in value:
            return "nul_character", f"holds a NUL character (U+0000) at {_where(path)}"
        elif isinstance(value, float) and not math.isfinite(value):
            return "not_finite", f"holds {value} at {_where(path)}; JSON numbers are finite"
    return None


def json_problem(document: object) -> tuple[str, str] | None:
    """Why ``document`` is out of bounds, as (code, message), or None if it is within them."""
    if problem := _walk(document):
        return problem
    size = len(json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_JSON_BYTES:
        return "json_too_large", f"is {size} bytes encoded; at most {MAX_JSON_BYTES} are allowed"
    return None


def check_json(document: Any) -> Any:
    """``document`` if it is within the bounds; a PydanticCustomError naming why not."""
    if problem := json_problem(document):
        code, message = problem
        raise PydanticCustomError(code, "{message}", {"message": message})
    return document


JsonObject = Annotated[dict[str, Any], AfterValidator(check_json)]
"""A free-form JSON object within the bounds."""
JsonValue = Annotated[Any, AfterValidator(check_json)]
"""Any free-form JSON value within the bounds."""
