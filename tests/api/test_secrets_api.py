"""Secrets: values go in, never come out, and are encrypted at rest."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from clawfleet.server import ControlPlane
from clawfleet.store.tables import resources, secret_versions
from tests.factories import secret

VALUE = "s3cr3t-planted-value-8d1f0c"
OTHER = "0ther-planted-value-77aa"


def assert_no_value(text: str) -> None:
    for planted in (VALUE, OTHER, base64.b64encode(VALUE.encode()).decode()):
        assert planted not in text


async def test_secret_values_never_appear_in_responses(
    api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    doc = secret("gh", token=VALUE)
    doc["spec"]["data"] = {"b64": base64.b64encode(OTHER.encode()).decode()}
    responses = [
        await api.post("/api/v1/secrets", json=doc),
        await api.get("/api/v1/secrets/gh"),
        await api.get("/api/v1/secrets"),
        await api.post("/api/v1/apply", json=doc),
        await api.get("/api/v1/secrets", params={"allTenants": "true"}),
    ]
    bad = secret("gh", token=VALUE)
    bad["spec"]["bogus"] = VALUE
    responses.append(await api.post("/api/v1/apply", json=bad))
    responses.append(await api.delete("/api/v1/secrets/gh"))
    statuses = [r.status_code for r in responses]
    assert statuses == [201, 200, 200, 200, 200, 422, 200]
    for response in responses:
        assert_no_value(response.text)
    shown = responses[1].json()
    assert shown["status"]["keys"] == [
        {"name": "b64", "size": len(OTHER)},
        {"name": "token", "size": len(VALUE)},
    ]
    assert shown["spec"] == {"type": "Opaque"}
    assert_no_value(caplog.text)


async def test_values_are_encrypted_at_rest(api: httpx.AsyncClient, plane: ControlPlane) -> None:
    assert (await api.post("/api/v1/secrets", json=secret("gh", token=VALUE))).status_code == 201
    async with plane.db.read() as conn:
        rows = (await conn.execute(select(secret_versions.c.ciphertext))).all()
        specs = (await conn.execute(select(resources.c.spec, resources.c.status))).all()
    assert len(rows) == 1
    assert VALUE.encode() not in bytes(rows[0].ciphertext)
    assert_no_value(repr(specs))
    if plane.db.is_sqlite:
        db_file = Path(plane.settings.database_url.split("///", 1)[1])
        for path in db_file.parent.glob("clawfleet.db*"):
            assert VALUE.encode() not in path.read_bytes()


async def test_changing_a_value_is_a_new_version_and_generation(
    api: httpx.AsyncClient, plane: ControlPlane
) -> None:
    await api.post("/api/v1/apply", json=secret("gh", token=VALUE))
    same = (await api.post("/api/v1/apply", json=secret("gh", token=VALUE))).json()
    assert same["result"] == "unchanged"
    changed = (await api.post("/api/v1/apply", json=secret("gh", token=OTHER))).json()
    assert changed["result"] == "configured"
    assert changed["object"]["metadata"]["generation"] == 2
    assert changed["object"]["status"]["version"] == 2
    # Applying a Secret without data (e.g. `get -o yaml` output) keeps the stored values.
    keep = secret("gh")
    keep["spec"] = {"type": "Opaque"}
    kept = (await api.post("/api/v1/apply", json=keep)).json()
    assert kept["result"] == "unchanged"
    assert kept["object"]["status"]["keys"] == [{"name": "token", "size": len(OTHER)}]
    async with plane.db.read() as conn:
        versions = (await conn.execute(select(secret_versions.c.version))).scalars().all()
    assert sorted(versions) == [1, 2]


async def test_secret_key_file_is_private(plane: ControlPlane) -> None:
    data = plane.settings.resolved_data_dir
    for name in ("secret.key", "admin-token"):
        assert (data / name).stat().st_mode & 0o777 == 0o600
    assert data.stat().st_mode & 0o077 == 0


async def test_invalid_secret_input(api: httpx.AsyncClient) -> None:
    doc = secret("gh")
    doc["spec"] = {"data": {"k": "not base64!"}}
    response = await api.post("/api/v1/secrets", json=doc)
    assert response.status_code == 422
    assert response.json()["errors"][0]["path"] == "spec.data"
    doc["spec"] = {"stringData": {"bad/key": "v"}}
    response = await api.post("/api/v1/secrets", json=doc)
    assert response.status_code == 422
    assert "bad/key" in response.json()["detail"]
