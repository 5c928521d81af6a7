"""schemathesis over every operation of the served OpenAPI, as each caller, on a real store.

For every generated request, valid and invalid: no 5xx (and no exception out of the app); the
status is one the route documents, with the documented media type and body schema; and a
refused request (4xx) changed nothing in the store, apart from the audit log's record of a
denial. Every distinct failure of every operation is collected, so one run lists them all.

schemathesis's own pytest integration for schemas built by fixtures does not run under this
pytest (it writes ``Node._nodeid``, which pytest 9 removed), so the loop over operations is
ours: the documented examples of each operation first, then generated positive and negative
cases, through ``APIOperation.as_strategy`` and Hypothesis; with ``FUZZ_COVERAGE=1`` (``make
fuzz``) also schemathesis's coverage cases, the boundary and just-past-the-boundary values of
every parameter (about 80 per operation).
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.fuzz.conftest import Fuzzed, fuzz_coverage, fuzz_examples, fuzz_seed
from tests.fuzz.findings import Findings
from tests.fuzz.store_digest import audit_outcomes_after, take_digest

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# The test's own timeout: seconds per example of every operation (the default run needs about
# a tenth of it), and for the coverage cases.
SECONDS_PER_EXAMPLE = 25
COVERAGE_SECONDS = 1800


def exercise(case: Case, fuzzed: Fuzzed, findings: Findings) -> None:
    """Send one case and record whatever it breaks."""
    before = take_digest(fuzzed.database)
    try:
        response = case.call(headers={"Authorization": f"Bearer {fuzzed.token}"})
    except Exception as exc:  # the app raised: a 500 for a real client
        findings.add(case, None, f"the app raised {type(exc).__name__}: {exc}")
        return
    try:
        case.validate_response(response, checks=CHECKS)
    except FailureGroup as group:
        for failure in group.exceptions:
            findings.add(case, response, f"{failure.title}: {failure.message}")
    except AssertionError as failure:
        findings.add(case, response, str(failure))
    if not 400 <= response.status_code < 500:
        return
    changed = before.changed_tables(take_digest(fuzzed.database))
    if changed:
        findings.add(case, response, f"refused, but changed the store: {', '.join(changed)}")
    written = audit_outcomes_after(fuzzed.database, before.audit_id)
    if any(outcome != "denied" for *_, outcome in written):
        findings.add(case, response, f"refused, but audited as done: {written}")


def fuzz_operation(operation: object, fuzzed: Fuzzed, findings: Findings) -> None:
    assert hasattr(operation, "as_strategy")
    budget = fuzz_examples()
    runs = [(strategy, 1) for strategy in operation.get_strategies_from_examples()]
    runs += [
        (operation.as_strategy(GenerationMode.POSITIVE), budget - budget // 2),
        (operation.as_strategy(GenerationMode.NEGATIVE), budget // 2),
    ]
    for strategy, examples in runs:
        _run(strategy, examples, fuzzed, findings)
    if fuzz_coverage():
        schema = operation.schema
        config = schema.config.generation_for(operation=operation, phase="coverage")
        modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
        for case in schema.iter_coverage_cases(
            operation, generation_modes=modes, generation_config=config
        ):
            exercise(case, fuzzed, findings)


def _run(strategy: st.SearchStrategy[Case], examples: int, fuzzed: Fuzzed, found: Findings) -> None:
    @seed(fuzz_seed())
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # failures are collected, not shrunk
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Case) -> None:
        exercise(case, fuzzed, found)

    with contextlib.suppress(Unsatisfiable):  # no negative cases: no parameters, no body
        run()


@pytest.mark.fuzz
@pytest.mark.timeout(
    max(120, SECONDS_PER_EXAMPLE * fuzz_examples()) + (COVERAGE_SECONDS if fuzz_coverage() else 0)
)
def test_no_request_breaks_the_api_or_changes_the_store_when_refused(
    fuzzed: Fuzzed, fuzz_schema: OpenApiSchema
) -> None:
    findings = Findings(fuzzed.caller)
    operations = list(fuzz_schema.get_all_operations())
    assert operations, "the filters left no operation to fuzz"
    for result in operations:
        fuzz_operation(result.ok(), fuzzed, findings)  # an invalid schema raises here
    assert not findings, findings.report()
