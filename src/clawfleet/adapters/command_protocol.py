"""The JSONL protocol between the command driver and an agent program, as pure functions.

Kept apart from the process handling so that every rule about what a line means (and what a
malformed line becomes) is testable without a subprocess. The rule of thumb: a program's output
can never crash the driver. A line that is not a well-formed event becomes a ``log`` event with
level ``stdout``; only a malformed ``result`` line fails the run (``invalid-output``), because
there the program clearly meant to end the run and did not say how.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from clawfleet.adapters.base import AgentEvent, RunInput
from clawfleet.domain.lifecycle import FailureKind

ERROR_MAX = 4000
OUTPUT_MAX = 1024 * 1024


def encode_input(run: RunInput) -> bytes:
    return _line(
        {
            "type": "input",
            "runId": run.run_id,
            "taskId": run.task_id,
            "attempt": run.attempt,
            "prompt": run.prompt,
            "data": dict(run.data),
        }
    )


def encode_steer(message: str, run_id: str | None = None) -> bytes:
    doc: dict[str, Any] = {"type": "steer", "message": message}
    if run_id is not None:
        doc["runId"] = run_id
    return _line(doc)


def encode_cancel(run_id: str | None = None) -> bytes:
    return _line({"type": "cancel"} if run_id is None else {"type": "cancel", "runId": run_id})


def _line(doc: Mapping[str, Any]) -> bytes:
    return (json.dumps(doc, ensure_ascii=False, default=str) + "\n").encode()


def stdout_log(text: str) -> AgentEvent:
    return AgentEvent("log", {"level": "stdout", "text": text})


def stderr_log(text: str) -> AgentEvent:
    return AgentEvent("log", {"level": "stderr", "text": text})


def succeeded(output: Any) -> AgentEvent:
    return AgentEvent("result", {"status": "succeeded", "output": output})


def failed(kind: FailureKind, error: str) -> AgentEvent:
    data = {"status": "failed", "failureKind": kind.value, "error": truncate(error, ERROR_MAX)}
    return AgentEvent("result", data)


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 15] + " …[truncated]"


def parse_event_line(text: str) -> tuple[str | None, AgentEvent]:
    """One stdout line as (its ``runId`` if any, the event it stands for).

    A ``result`` event without ``output`` is returned without it: the caller fills in the
    concatenated message texts.
    """
    try:
        doc = json.loads(text, parse_constant=_refuse_constant)
    except ValueError:
        return None, stdout_log(text)
    if not isinstance(doc, dict):
        return None, stdout_log(text)
    run_id = doc.get("runId")
    run_id = run_id if isinstance(run_id, str) else None
    kind = doc.get("type")
    parse = _PARSERS.get(kind) if isinstance(kind, str) else None
    event = parse(doc) if parse is not None else None
    return run_id, event if event is not None else stdout_log(text)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_message(doc: dict[str, Any]) -> AgentEvent | None:
    text = doc.get("text")
    return AgentEvent("message", {"text": text}) if isinstance(text, str) else None


def _parse_tool_call(doc: dict[str, Any]) -> AgentEvent | None:
    name, args = doc.get("name"), doc.get("args", {})
    if not isinstance(name, str) or not name or not isinstance(args, dict):
        return None
    return AgentEvent("tool_call", {"name": name, "args": args})


def _parse_log(doc: dict[str, Any]) -> AgentEvent | None:
    level, text = doc.get("level", "info"), doc.get("text")
    if not isinstance(level, str) or not isinstance(text, str):
        return None
    return AgentEvent("log", {"level": level, "text": text})


def _parse_usage(doc: dict[str, Any]) -> AgentEvent | None:
    counts = {key: doc.get(key, 0) for key in ("inputTokens", "outputTokens")}
    if not all(_is_count(value) for value in counts.values()):
        return None
    return AgentEvent("usage", counts)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _parse_progress(doc: dict[str, Any]) -> AgentEvent | None:
    text, pct = doc.get("text"), doc.get("pct")
    data: dict[str, Any] = {}
    if text is not None:
        if not isinstance(text, str):
            return None
        data["text"] = text
    if pct is not None:
        if not _is_pct(pct):
            return None
        data["pct"] = pct
    return AgentEvent("progress", data) if data else None


def _is_pct(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 <= value <= 100
    )


def _parse_steer(doc: dict[str, Any]) -> AgentEvent | None:
    message = doc.get("message")
    if message is None:
        return AgentEvent("steer", {})
    return AgentEvent("steer", {"message": message}) if isinstance(message, str) else None


def _parse_result(doc: dict[str, Any]) -> AgentEvent:
    status = doc.get("status", "succeeded")
    if status == "succeeded":
        data: dict[str, Any] = {"status": "succeeded"}
        if "output" in doc:
            data["output"] = doc["output"]
        return AgentEvent("result", data)
    if status == "failed":
        error = doc.get("error")
        if not isinstance(error, str) or not error:
            return _invalid("a failed result needs a non-empty 'error' string")
        return failed(FailureKind.AGENT_ERROR, error)
    shown = json.dumps(status)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return _invalid(f"'status' must be 'succeeded' or 'failed', got {shown}")


def _invalid(problem: str) -> AgentEvent:
    return failed(
        FailureKind.INVALID_OUTPUT, f"the agent program wrote a malformed result line: {problem}"
    )


_PARSERS: dict[str, Callable[[dict[str, Any]], AgentEvent | None]] = {
    "message": _parse_message,
    "tool_call": _parse_tool_call,
    "log": _parse_log,
    "usage": _parse_usage,
    "progress": _parse_progress,
    "steer": _parse_steer,
    "result": _parse_result,
}


class OutputCollector:
    """The run's output when the program gives none: texts joined, capped at OUTPUT_MAX chars."""

    def __init__(self, separator: str = "") -> None:
        self._separator = separator
        self._parts: list[str] = []
        self._size = 0
        self._truncated = False

    def add(self, text: str) -> None:
        if self._truncated:
            return
        self._size += len(text) + len(self._separator)
        if self._size > OUTPUT_MAX:
            self._truncated = True
            return
        self._parts.append(text)

    def text(self) -> str:
        joined = self._separator.join(self._parts)
        return joined + "\n…[output truncated]" if self._truncated else joined
