"""What the fuzzer found, one entry per operation and kind of failure, with a reproduction.

The same defect shows up in many generated cases; only the first case of each (operation,
status, failure) is kept, so the report stays short enough to act on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemathesis import Case, Response
from schemathesis.core import NotSet

# How much of a response body a report quotes.
BODY_CHARS = 300
FIRST_LINE_CHARS = 200


@dataclass
class Finding:
    operation: str
    status: int | None
    failure: str
    request: str
    response: str

    def render(self) -> str:
        status = "no response" if self.status is None else str(self.status)
        return (
            f"- {self.operation} -> {status}: {self.failure}\n"
            f"    request:  {self.request}\n"
            f"    response: {self.response}"
        )


@dataclass
class Findings:
    caller: str
    items: dict[tuple[str, int | None, str], Finding] = field(default_factory=dict)

    def add(self, case: Case, response: Response | None, failure: str) -> None:
        status = None if response is None else response.status_code
        title = failure.splitlines()[0][:FIRST_LINE_CHARS] if failure else "?"
        key = (case.operation.label, status, title)
        if key in self.items:
            return
        body = "" if response is None else response.text[:BODY_CHARS]
        self.items[key] = Finding(
            case.operation.label, status, title, _request(case), body.replace("\n", " ")
        )

    def __bool__(self) -> bool:
        return bool(self.items)

    def report(self) -> str:
        lines = [f"{len(self.items)} distinct failures as {self.caller}:"]
        lines += [finding.render() for finding in self.items.values()]
        return "\n".join(lines)


def _request(case: Case) -> str:
    """The request in one line: method, path with its parameters, query and body."""
    body = "" if isinstance(case.body, NotSet) else f" body={case.body!r}"
    query = f" query={case.query!r}" if case.query else ""
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    shown = f" headers={headers!r}" if headers else ""
    return f"{case.method} {case.formatted_path}{query}{shown}{body}"[:2000]
