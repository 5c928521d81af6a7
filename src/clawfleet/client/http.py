"""A small typed client over httpx. Errors from the server arrive as ``ApiError`` carrying the
problem document; transport failures as ``ClientError`` with what to do next."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx

from clawfleet.client.config import ClientConfig, save_session
from clawfleet.core.errors import ClawfleetError

API = "/api/v1"
RATE_LIMIT_RETRIES = 3
RATE_LIMIT_MAX_WAIT = 10.0


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.1, float(response.headers.get("retry-after", "1")))
    except ValueError:
        return 1.0


def _cannot_reach(server: str) -> str:
    return (
        f"cannot reach the ClawFleet server at {server}; start one with `clawfleet up`, or "
        "point CLAWFLEET_SERVER at yours"
    )


class ClientError(ClawfleetError):
    code = "client"


class ApiError(ClawfleetError):
    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        detail = str(problem.get("detail") or problem.get("title") or f"HTTP {status}")
        super().__init__(detail)
        self.status = status
        self.problem = problem
        self.code = str(problem.get("code") or f"http-{status}")

    @property
    def field_errors(self) -> list[dict[str, Any]]:
        errors = self.problem.get("errors") or []
        return [e for e in errors if isinstance(e, dict)]


class ClawfleetClient:
    def __init__(self, config: ClientConfig, *, timeout: float = 30.0) -> None:
        self.config = config
        headers = {"User-Agent": "clawfleet-cli"}
        if config.token:
            headers["Authorization"] = f"Bearer {config.token}"
        self._http = httpx.Client(base_url=config.server, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ClawfleetClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------------------

    def scope(self, tenant: str | None = None, project: str | None = None) -> dict[str, str]:
        """The tenant and project query parameters: the given ones, else the configured ones."""
        params = {}
        if tenant or self.config.tenant:
            params["tenant"] = tenant or self.config.tenant or ""
        if project or self.config.project:
            params["project"] = project or self.config.project or ""
        return params

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._send(method, path, **kwargs)
        if response.status_code == 401 and self._refresh_session():
            response = self._send(method, path, **kwargs)
        for _ in range(RATE_LIMIT_RETRIES):  # honour Retry-After a few times, then report it
            if response.status_code != 429:
                break
            time.sleep(min(RATE_LIMIT_MAX_WAIT, _retry_after(response)))
            response = self._send(method, path, **kwargs)
        return self._check(response)

    def _refresh_session(self) -> bool:
        """Trade the stored refresh token for a new session (once), and save it."""
        config = self.config
        if not config.refresh_token or config.config_path is None:
            return False
        answer = self._send(
            "POST", f"{API}/auth/refresh", json={"refreshToken": config.refresh_token}
        )
        if answer.status_code != 200:
            return False
        session = answer.json()
        save_session(
            config.config_path, config.server, session["accessToken"], session["refreshToken"]
        )
        self.config = replace(
            config, token=session["accessToken"], refresh_token=session["refreshToken"]
        )
        self._http.headers["Authorization"] = f"Bearer {session['accessToken']}"
        return True

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise ClientError(_cannot_reach(self.config.server)) from exc
        except httpx.TimeoutException as exc:
            raise ClientError(f"the server at {self.config.server} did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise ClientError(f"request to {self.config.server} failed: {exc}") from exc

    def _check(self, response: httpx.Response) -> httpx.Response:
        """The response if it succeeded; otherwise raise ``ApiError`` with its problem document
        (read it first when it was streamed)."""
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"detail": response.text[:500] or response.reason_phrase}
            if not isinstance(problem, dict):
                problem = {"detail": str(problem)[:500]}
            signing_in = response.request.url.path.startswith(f"{API}/auth/")
            if response.status_code == 401 and not signing_in:
                problem["detail"] = self._unauthenticated(str(problem.get("detail") or ""))
            raise ApiError(response.status_code, problem)
        return response

    def _unauthenticated(self, detail: str) -> str:
        """What to do about a 401: sign in, set a token, or point at the right data dir."""
        config = self.config
        sign_in = "sign in with `clawfleet login -u NAME` or set CLAWFLEET_TOKEN"
        if config.token and config.token_source == str(config.admin_token_path):
            return (
                f"{detail}: the admin token in {config.admin_token_path} is not valid for "
                f"{config.server}; set CLAWFLEET_DATA_DIR to the data dir that server printed "
                f"at start-up, or {sign_in}"
            )
        if config.token:
            return f"{detail} (the token from {config.token_source}); {sign_in}"
        if config.admin_token_path is None:
            return (
                f"no token for {config.server}: {sign_in} (the local admin token is only sent "
                "to a server on this machine)"
            )
        return (
            f"no token: {sign_in}, or run `clawfleet up` on this machine; no admin token in "
            f"{config.admin_token_path} (set CLAWFLEET_DATA_DIR to the data dir of the server)"
        )

    # -- resources ---------------------------------------------------------------------------

    def apply(
        self, doc: dict[str, Any], *, tenant: str | None = None, project: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        body = self.request(
            "POST", f"{API}/apply", json=doc, params=self.scope(tenant, project)
        ).json()
        return str(body["result"]), dict(body["object"])

    def create(
        self,
        plural: str,
        doc: dict[str, Any],
        *,
        tenant: str | None = None,
        project: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        response = self.request(
            "POST",
            f"{API}/{plural}",
            json=doc,
            params=self.scope(tenant, project),
            headers=headers,
        )
        return dict(response.json())

    def get(
        self, plural: str, name: str, *, tenant: str | None = None, project: str | None = None
    ) -> dict[str, Any]:
        return dict(
            self.request("GET", f"{API}/{plural}/{name}", params=self.scope(tenant, project)).json()
        )

    def update(
        self,
        plural: str,
        name: str,
        doc: dict[str, Any],
        *,
        tenant: str | None = None,
        project: str | None = None,
    ) -> dict[str, Any]:
        return dict(
            self.request(
                "PUT", f"{API}/{plural}/{name}", json=doc, params=self.scope(tenant, project)
            ).json()
        )

    def delete(
        self, plural: str, name: str, *, tenant: str | None = None, project: str | None = None
    ) -> dict[str, Any]:
        return dict(
            self.request(
                "DELETE", f"{API}/{plural}/{name}", params=self.scope(tenant, project)
            ).json()
        )

    def list(
        self,
        plural: str,
        *,
        tenant: str | None = None,
        project: str | None = None,
        selector: str | None = None,
        all_tenants: bool = False,
        all_projects: bool = False,
        page_size: int = 500,
    ) -> Iterator[dict[str, Any]]:
        """Every matching item, following continue tokens page by page."""
        params: dict[str, Any] = {"limit": page_size}
        if all_tenants:
            params["allTenants"] = "true"
        else:
            params.update(self.scope(tenant, project))
        if all_projects:
            params["allProjects"] = "true"
        if selector:
            params["labelSelector"] = selector
        while True:
            body = self.request("GET", f"{API}/{plural}", params=params).json()
            yield from body["items"]
            cursor = (body.get("metadata") or {}).get("continue")
            if not cursor:
                return
            params["continue"] = cursor

    def post(self, path: str, body: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
        """POST in the client's tenant and project scope (``params`` may override it)."""
        scoped = {**self.scope(), **params}
        return dict(self.request("POST", f"{API}{path}", json=body or {}, params=scoped).json())

    def get_path(self, path: str, **params: Any) -> dict[str, Any]:
        """GET in the client's tenant and project scope (``params`` may override it)."""
        scoped = {**self.scope(), **params}
        return dict(self.request("GET", f"{API}{path}", params=scoped).json())

    def delete_path(self, path: str, **params: Any) -> dict[str, Any]:
        """DELETE in the client's tenant and project scope (``params`` may override it)."""
        scoped = {**self.scope(), **params}
        return dict(self.request("DELETE", f"{API}{path}", params=scoped).json())

    def submit_task(
        self, doc: dict[str, Any], *, tenant: str | None = None, project: str | None = None
    ) -> dict[str, Any]:
        return dict(
            self.request(
                "POST", f"{API}/tasks", json=doc, params=self.scope(tenant, project)
            ).json()
        )

    def stream_events(
        self, run_id: str, after: int = 0, *, until: float | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every event of a run after ``after``, live, resuming after dropped connections;
        ends with ``{"type": "end", ...}`` once the run is over. With ``until`` (a
        ``time.monotonic()`` instant) it also stops, without an end, when that moment passes."""
        cursor = after
        failures = 0
        while until is None or time.monotonic() < until:
            read = 60.0 if until is None else max(0.1, min(60.0, until - time.monotonic()))
            try:
                with self._http.stream(
                    "GET",
                    f"{API}/runs/{run_id}/events/stream",
                    params={"after": cursor},
                    timeout=httpx.Timeout(read, connect=5.0),
                ) as response:
                    if response.status_code >= 400:
                        response.read()
                        self._check(response)
                    for event_id, event, data in parse_sse(_lines(response, until)):
                        failures = 0
                        doc = json.loads(data)
                        if event == "end":
                            yield {"type": "end", **doc}
                            return
                        cursor = int(event_id or cursor)
                        yield doc
            except (httpx.TransportError, httpx.DecodingError) as exc:
                if until is not None and time.monotonic() >= until:
                    return
                failures += 1
                if failures > 30:
                    raise ClientError(f"lost the event stream of run {run_id}: {exc}") from exc
                time.sleep(min(2.0, 0.1 * failures))

    def stream_text(self, path: str, **params: Any) -> Iterator[str]:
        """GET ``path`` in the client's scope (``params`` may override it) and yield the body
        as it arrives, without a read timeout: for logs that are followed."""
        scoped = {**self.scope(), **params}
        try:
            with self._http.stream(
                "GET", f"{API}{path}", params=scoped, timeout=httpx.Timeout(None, connect=5.0)
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    self._check(response)
                yield from response.iter_text()
        except httpx.ConnectError as exc:
            raise ClientError(_cannot_reach(self.config.server)) from exc
        except httpx.TransportError as exc:
            raise ClientError(
                f"lost the stream of {path} from {self.config.server}: {exc}"
            ) from exc

    def wait_task(
        self, name: str, until: str = "finished", timeout: float = 25.0
    ) -> dict[str, Any]:
        """Long-poll a task until it has ``until`` ("started" or "finished") or ``timeout``
        seconds (at most 60) pass: ``{"task": <task>, "waiting": <why it waits, or None>}``."""
        response = self.request(
            "GET",
            f"{API}/tasks/{name}/wait",
            params={**self.scope(), "until": until, "timeout": timeout},
            timeout=timeout + 15.0,  # the server answers by ``timeout``; allow for the trip
        )
        return dict(response.json())

    def whoami(self) -> dict[str, Any]:
        return dict(self.request("GET", f"{API}/whoami").json())


def _lines(response: httpx.Response, until: float | None) -> Iterator[str]:
    """The response's lines, keepalives included, until the moment ``until`` passes."""
    for line in response.iter_lines():
        yield line
        if until is not None and time.monotonic() >= until:
            return


def parse_sse(lines: Iterator[str]) -> Iterator[tuple[str, str, str]]:
    """(id, event, data) for each server-sent event in a stream of lines."""
    event_id, event = "", "message"
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield event_id, event, "\n".join(data)
            event, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "id":
                event_id = value
            elif name == "event":
                event = value
            elif name == "data":
                data.append(value)
