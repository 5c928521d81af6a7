"""Users, sessions and service accounts over HTTP, on both databases."""

from __future__ import annotations

import httpx

from clawfleet.testing.clock import FakeClock

PASSWORD = "correct horse battery staple"


async def make_user(api: httpx.AsyncClient, name: str = "alice") -> None:
    response = await api.post("/api/v1/users", json={"name": name, "password": PASSWORD})
    assert response.status_code == 201, response.text


async def login(anon: httpx.AsyncClient, name: str, password: str = PASSWORD) -> httpx.Response:
    return await anon.post("/api/v1/auth/login", json={"username": name, "password": password})


async def test_login_gives_a_session_that_authenticates(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await make_user(api)
    session = (await login(anon, "alice")).json()
    assert session["tokenType"] == "Bearer" and session["expiresIn"] == 900
    me = await anon.get(
        "/api/v1/whoami", headers={"Authorization": f"Bearer {session['accessToken']}"}
    )
    assert me.status_code == 200
    assert me.json()["name"] == "user:alice"
    assert me.json()["bindings"] == []
    # no role anywhere: the user sees nothing, not even that agents exist
    agents = await anon.get(
        "/api/v1/agents", headers={"Authorization": f"Bearer {session['accessToken']}"}
    )
    assert agents.status_code == 404


async def test_failures_say_nothing_about_which_part_was_wrong(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await make_user(api)
    wrong_password = await login(anon, "alice", "wrong password here")
    unknown_user = await login(anon, "mallory", PASSWORD)
    assert wrong_password.status_code == unknown_user.status_code == 401
    assert wrong_password.json()["detail"] == unknown_user.json()["detail"]
    assert "alice" not in wrong_password.text


async def test_sign_in_attempts_are_rate_limited(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await make_user(api)
    statuses = [(await login(anon, "alice", "nope nope nope")).status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    blocked = await login(anon, "alice")  # even the right password, until the window passes
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) >= 1


async def test_refresh_rotates_and_logout_ends_the_session(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await make_user(api)
    first = (await login(anon, "alice")).json()
    second = (
        await anon.post("/api/v1/auth/refresh", json={"refreshToken": first["refreshToken"]})
    ).json()
    assert second["refreshToken"] != first["refreshToken"]
    reused = await anon.post("/api/v1/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert reused.status_code == 401
    await anon.post("/api/v1/auth/logout", json={"refreshToken": second["refreshToken"]})
    ended = await anon.post("/api/v1/auth/refresh", json={"refreshToken": second["refreshToken"]})
    assert ended.status_code == 401


async def test_disabled_users_cannot_sign_in(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await make_user(api)
    assert (await api.post("/api/v1/users/alice/disable")).json()["disabled"] is True
    assert (await login(anon, "alice")).status_code == 401
    await api.post("/api/v1/users/alice/enable")
    assert (await login(anon, "alice")).status_code == 200


async def test_enabling_a_disabled_user_does_not_revive_its_old_sessions(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await make_user(api)
    old = (await login(anon, "alice")).json()
    old_access = {"Authorization": f"Bearer {old['accessToken']}"}
    assert (await anon.get("/api/v1/whoami", headers=old_access)).status_code == 200

    await api.post("/api/v1/users/alice/disable")
    assert (await anon.get("/api/v1/whoami", headers=old_access)).status_code == 401
    await api.post("/api/v1/users/alice/enable")

    assert (await anon.get("/api/v1/whoami", headers=old_access)).status_code == 401
    reused = await anon.post("/api/v1/auth/refresh", json={"refreshToken": old["refreshToken"]})
    assert reused.status_code == 401
    # a new sign-in works, and keeps working
    fresh = (await login(anon, "alice")).json()
    fresh_access = {"Authorization": f"Bearer {fresh['accessToken']}"}
    assert (await anon.get("/api/v1/whoami", headers=fresh_access)).status_code == 200
    renewed = await anon.post("/api/v1/auth/refresh", json={"refreshToken": fresh["refreshToken"]})
    assert renewed.status_code == 200


async def test_bad_user_input(api: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
    weak = await api.post("/api/v1/users", json={"name": "bob", "password": "short"})
    assert weak.status_code == 422 and weak.json()["errors"][0]["path"] == "password"
    hostile = await api.post("/api/v1/users", json={"name": "../x", "password": PASSWORD})
    assert hostile.status_code == 422
    await make_user(api)
    again = await api.post("/api/v1/users", json={"name": "alice", "password": PASSWORD})
    assert again.status_code == 409
    forged = await anon.get(
        "/api/v1/whoami", headers={"Authorization": "Bearer eyJhbGciOiJub25lIn0.e30."}
    )
    assert forged.status_code == 401
    assert PASSWORD not in weak.text + again.text


async def test_nul_and_control_characters_in_identity_bodies_are_refused(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    """PostgreSQL cannot hold a NUL in text: without a check these were 500s there."""
    login = await anon.post("/api/v1/auth/login", json={"username": "al\x00ice", "password": "x"})
    assert login.status_code == 422 and login.json()["errors"][0]["path"] == "username"
    account = await api.post(
        "/api/v1/serviceaccounts", json={"name": "ci", "description": "nightly\x00"}
    )
    assert account.status_code == 422
    assert account.json()["errors"][0]["path"] == "description"
    assert (await api.get("/api/v1/serviceaccounts")).json()["items"] == []


async def test_service_account_keys(api: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
    created = await api.post("/api/v1/serviceaccounts", json={"name": "ci"})
    assert created.status_code == 201
    key = (await api.post("/api/v1/serviceaccounts/ci/keys", json={})).json()
    headers = {"Authorization": f"Bearer {key['key']}"}
    me = (await anon.get("/api/v1/whoami", headers=headers)).json()
    assert me["name"] == "serviceaccount:default/ci"
    listed = (await api.get("/api/v1/serviceaccounts")).json()["items"]
    assert listed[0]["keys"][0]["id"] == key["id"]
    assert key["key"] not in str(listed)  # the key is shown once, never listed
    await api.delete(f"/api/v1/serviceaccounts/ci/keys/{key['id']}")
    assert (await anon.get("/api/v1/whoami", headers=headers)).status_code == 401


async def test_role_binding_grants_and_scopes_access(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await make_user(api)
    for tenant in ("acme", "other"):
        await api.post("/api/v1/tenants", json={"kind": "Tenant", "metadata": {"name": tenant}})
        await api.post(
            "/api/v1/projects",
            json={"kind": "Project", "metadata": {"name": "web", "tenant": tenant}},
        )
    binding = {
        "kind": "RoleBinding",
        "metadata": {"name": "alice-dev", "tenant": "acme"},
        "spec": {"role": "developer", "subjects": [{"kind": "User", "name": "alice"}]},
    }
    assert (await api.post("/api/v1/apply", json=binding)).status_code == 201
    token = (await login(anon, "alice")).json()["accessToken"]
    headers = {"Authorization": f"Bearer {token}"}
    me = (await anon.get("/api/v1/whoami", headers=headers)).json()
    assert me["tenant"] == "acme"
    assert me["bindings"] == [{"role": "developer", "tenant": "acme", "project": None}]
    own = await anon.get("/api/v1/agents", params={"project": "web"}, headers=headers)
    assert own.status_code == 200
    other = await anon.get(
        "/api/v1/agents", params={"tenant": "other", "project": "web"}, headers=headers
    )
    assert other.status_code == 404
    secrets = await anon.get("/api/v1/secrets", params={"project": "web"}, headers=headers)
    assert secrets.status_code == 403  # a role here, but not one that reads secrets


async def test_a_session_expires_in_the_clocks_time(
    api: httpx.AsyncClient, anon: httpx.AsyncClient, clock: FakeClock
) -> None:
    await make_user(api)
    session = (await login(anon, "alice")).json()
    headers = {"Authorization": f"Bearer {session['accessToken']}"}

    clock.advance(session["expiresIn"] - 1)
    assert (await anon.get("/api/v1/whoami", headers=headers)).status_code == 200

    clock.advance(1)
    expired = await anon.get("/api/v1/whoami", headers=headers)
    assert expired.status_code == 401
    assert "session expired" in expired.json()["detail"]
    # the refresh token outlives the access token: it gives a new one, good from now on
    renewed = await anon.post(
        "/api/v1/auth/refresh", json={"refreshToken": session["refreshToken"]}
    )
    fresh = {"Authorization": f"Bearer {renewed.json()['accessToken']}"}
    assert (await anon.get("/api/v1/whoami", headers=fresh)).status_code == 200


async def test_a_refresh_token_expires_in_the_clocks_time(
    api: httpx.AsyncClient, anon: httpx.AsyncClient, clock: FakeClock
) -> None:
    await make_user(api)
    first = (await login(anon, "alice")).json()
    clock.advance(29 * 24 * 3600)
    second = await anon.post("/api/v1/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert second.status_code == 200

    clock.advance(30 * 24 * 3600)
    late = await anon.post(
        "/api/v1/auth/refresh", json={"refreshToken": second.json()["refreshToken"]}
    )
    assert late.status_code == 401
