"""Run rows, their ordered events and the commands sent to runners.

A run starts running when it is claimed and ends once: ``finish`` checks the move against the
lifecycle rules and writes with a compare-and-swap on the stored state, so a retried completion,
the reaper and a re-registering runner can race without recording two outcomes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from clawfleet.domain.lifecycle import RUN_TERMINAL, RunState, check_run
from clawfleet.domain.tasks import Run, RunCommand, RunEvent
from clawfleet.store.paging import Page, keyset_page
from clawfleet.store.repositories.rows import failure_kind_of, scope_clause
from clawfleet.store.tables import run_commands, run_events, runs

RUNNING = RunState.RUNNING.value


def _run(row: Any) -> Run:
    values = dict(row._mapping)
    values["state"] = RunState(values["state"])
    values["failure_kind"] = failure_kind_of(values["failure_kind"])
    return Run(**values)


class RunRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def insert_many(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Record new runs; every run starts running."""
        if any(row["state"] != RUNNING for row in rows):
            raise ValueError("a run starts running")
        if rows:
            await self.conn.execute(insert(runs), [dict(row) for row in rows])

    async def get(self, run_id: str, *, for_update: bool = False) -> Run | None:
        query = select(runs).where(runs.c.id == run_id)
        if for_update:
            query = query.with_for_update()
        row = (await self.conn.execute(query)).first()
        return _run(row) if row is not None else None

    async def find(self, *, task_id: str, limit: int = 1000) -> list[Run]:
        """The runs (attempts) of one task, oldest first."""
        query = select(runs).where(runs.c.task_id == task_id).order_by(runs.c.id).limit(limit)
        return [_run(row) for row in (await self.conn.execute(query)).all()]

    async def page(
        self,
        *,
        tenant: str | None = None,
        project: str | None = None,
        scopes: Sequence[tuple[str, str | None]] | None = None,
        task_id: str | None = None,
        state: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page[Run]:
        """One page of runs in id (start time) order, after ``cursor``."""
        c = runs.c
        query = select(runs)
        for column, value in ((c.tenant, tenant), (c.project, project), (c.task_id, task_id),
                              (c.state, state)):  # fmt: skip
            if value is not None:
                query = query.where(column == value)
        if scopes is not None:
            query = query.where(scope_clause(c.tenant, c.project, scopes))
        rows, next_cursor = await keyset_page(self.conn, query, (c.id,), cursor, limit)
        return Page([_run(row) for row in rows], next_cursor)

    async def expired(self, now: datetime, limit: int = 500) -> list[Run]:
        c = runs.c
        query = (
            select(runs)
            .where(c.state == RUNNING, c.lease_expires_at < now)
            .order_by(c.lease_expires_at)
            .limit(limit)
        )
        return [_run(row) for row in (await self.conn.execute(query)).all()]

    async def overdue(self, now: datetime, limit: int = 500) -> list[Run]:
        c = runs.c
        query = (
            select(runs)
            .where(c.state == RUNNING, c.deadline_at.is_not(None), c.deadline_at < now)
            .limit(limit)
        )
        return [_run(row) for row in (await self.conn.execute(query)).all()]

    async def finish(self, run_id: str, target: RunState, values: Mapping[str, Any]) -> bool:
        """Move a running run to its end state ``target`` (checked); False if it had ended."""
        if target not in RUN_TERMINAL:
            raise ValueError(f"{target.value} is not an end state of a run")
        check_run(RunState.RUNNING, target)
        query = (
            update(runs)
            .where(runs.c.id == run_id, runs.c.state == RUNNING)
            .values(**values, state=target.value)
        )
        return (await self.conn.execute(query)).rowcount == 1

    async def renew_leases(self, instance_id: str, run_ids: Sequence[str], until: datetime) -> None:
        if run_ids:
            c = runs.c
            await self.conn.execute(
                update(runs)
                .where(c.instance_id == instance_id, c.state == RUNNING, c.id.in_(run_ids))
                .values(lease_expires_at=until)
            )

    async def extend_all_leases(self, until: datetime) -> int:
        c = runs.c
        result = await self.conn.execute(
            update(runs)
            .where(c.state == RUNNING, c.lease_expires_at < until)
            .values(lease_expires_at=until)
        )
        return int(result.rowcount)

    async def count_running(self, tenant: str, project: str | None) -> int:
        c = runs.c
        query = select(func.count()).select_from(runs).where(c.state == RUNNING, c.tenant == tenant)
        if project is not None:
            query = query.where(c.project == project)
        return int((await self.conn.execute(query)).scalar_one())

    async def running_by_instance(self) -> dict[str, int]:
        c = runs.c
        query = (
            select(c.instance_id, func.count()).where(c.state == RUNNING).group_by(c.instance_id)
        )
        return {row[0]: int(row[1]) for row in (await self.conn.execute(query)).all()}

    async def running_on(self, instance_id: str) -> list[Run]:
        c = runs.c
        query = select(runs).where(c.instance_id == instance_id, c.state == RUNNING)
        return [_run(row) for row in (await self.conn.execute(query)).all()]

    # -- events --------------------------------------------------------------------------

    async def insert_events(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert events whose seq the caller assigned (e.g. the first event of a new run)."""
        if rows:
            await self.conn.execute(insert(run_events), list(rows))

    async def add_events(self, run_id: str, events: Sequence[dict[str, Any]], now: datetime) -> int:
        """Append events in order; those whose ``runner_seq`` is already stored are skipped.

        Returns the run's last seq. The caller holds the run row (write transaction)."""
        e = run_events.c
        numbered = [ev for ev in events if ev.get("runner_seq") is not None]
        seen: set[int] = set()
        if numbered:
            query = select(e.runner_seq).where(
                e.run_id == run_id, e.runner_seq.in_([ev["runner_seq"] for ev in numbered])
            )
            seen = {int(v) for v in (await self.conn.execute(query)).scalars().all()}
        fresh, batch_seen = [], set()
        for ev in events:
            rseq = ev.get("runner_seq")
            if rseq is not None and (rseq in seen or rseq in batch_seen):
                continue
            if rseq is not None:
                batch_seen.add(rseq)
            fresh.append(ev)
        current = await self.conn.execute(
            update(runs)
            .where(runs.c.id == run_id)
            .values(last_seq=runs.c.last_seq + len(fresh))
            .returning(runs.c.last_seq)
        )
        last = int(current.scalar_one())
        if fresh:
            first = last - len(fresh) + 1
            await self.conn.execute(
                insert(run_events),
                [
                    {
                        "run_id": run_id,
                        "seq": first + index,
                        "runner_seq": ev.get("runner_seq"),
                        "type": ev["type"],
                        "data": ev.get("data") or {},
                        "created_at": ev.get("created_at") or now,
                    }
                    for index, ev in enumerate(fresh)
                ],
            )
        return last

    async def events(self, run_id: str, *, after: int, limit: int) -> list[RunEvent]:
        e = run_events.c
        query = (
            select(e.seq, e.type, e.data, e.created_at)
            .where(e.run_id == run_id, e.seq > after)
            .order_by(e.seq)
            .limit(limit)
        )
        return [RunEvent(**row._mapping) for row in (await self.conn.execute(query)).all()]

    # -- commands ------------------------------------------------------------------------

    async def add_command(
        self, instance_id: str, run_id: str, kind: str, payload: dict[str, Any], now: datetime
    ) -> int:
        result = await self.conn.execute(
            insert(run_commands)
            .values(
                instance_id=instance_id, run_id=run_id, type=kind, payload=payload, created_at=now
            )
            .returning(run_commands.c.id)
        )
        return int(result.scalar_one())

    async def pending_commands(self, instance_id: str) -> list[RunCommand]:
        c = run_commands.c
        query = (
            select(c.id, c.run_id, c.type, c.payload)
            .where(c.instance_id == instance_id, c.acked_at.is_(None))
            .order_by(c.id)
        )
        return [RunCommand(**row._mapping) for row in (await self.conn.execute(query)).all()]

    async def ack_commands(self, instance_id: str, ids: Sequence[int], now: datetime) -> None:
        if ids:
            c = run_commands.c
            await self.conn.execute(
                update(run_commands)
                .where(c.instance_id == instance_id, c.id.in_(ids), c.acked_at.is_(None))
                .values(acked_at=now)
            )
