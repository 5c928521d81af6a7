"""Task rows and the dispatch queue.

A pending task has one queue row per candidate agent. Claiming picks the best row for an agent
(priority, then FIFO), removes every queue row of that task, and moves the task from pending to
claimed; on PostgreSQL the pick uses FOR UPDATE SKIP LOCKED so concurrent claimers never wait on
each other. A task's state changes only through ``move``: it checks the move against the
lifecycle rules and writes with a compare-and-swap on the stored from-state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from clawfleet.domain.lifecycle import TaskState, check_task
from clawfleet.domain.tasks import Task
from clawfleet.store.paging import Page, keyset_page
from clawfleet.store.repositories.rows import failure_kind_of, scope_clause
from clawfleet.store.tables import dispatch_queue, run_commands, run_events, runs, tasks


def _task(row: Any) -> Task:
    values = dict(row._mapping)
    values["state"] = TaskState(values["state"])
    values["cancel_requested"] = bool(values["cancel_requested"])
    values["failure_kind"] = failure_kind_of(values["failure_kind"])
    return Task(**values)


class TaskRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def insert(self, values: Mapping[str, Any]) -> Task:
        """Record a new task; it starts pending (or blocked). Returns the stored record."""
        if TaskState(values["state"]) not in (TaskState.PENDING, TaskState.BLOCKED):
            raise ValueError("a task starts pending or blocked")
        result = await self.conn.execute(insert(tasks).values(**values).returning(tasks))
        return _task(result.one())

    async def get(self, task_id: str, *, for_update: bool = False) -> Task | None:
        query = select(tasks).where(tasks.c.id == task_id)
        if for_update:
            query = query.with_for_update()
        row = (await self.conn.execute(query)).first()
        return _task(row) if row is not None else None

    async def get_by_name(
        self, tenant: str, project: str, name: str, *, for_update: bool = False
    ) -> Task | None:
        c = tasks.c
        query = select(tasks).where(c.tenant == tenant, c.project == project, c.name == name)
        if for_update:
            query = query.with_for_update()
        row = (await self.conn.execute(query)).first()
        return _task(row) if row is not None else None

    async def get_many(self, seqs: Sequence[int]) -> list[Task]:
        query = select(tasks).where(tasks.c.seq.in_(seqs)).order_by(tasks.c.seq)
        return [_task(row) for row in (await self.conn.execute(query)).all()]

    async def find_by_idempotency_key(self, tenant: str, project: str, key: str) -> Task | None:
        c = tasks.c
        query = select(tasks).where(
            c.tenant == tenant, c.project == project, c.idempotency_key == key
        )
        row = (await self.conn.execute(query)).first()
        return _task(row) if row is not None else None

    async def page(
        self,
        *,
        tenant: str | None,
        project: str | None,
        scopes: Sequence[tuple[str, str | None]] | None = None,
        state: str | None = None,
        agent: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page[Task]:
        """One page of tasks in submission order, after ``cursor``."""
        c = tasks.c
        query = select(tasks)
        if tenant is not None:
            query = query.where(c.tenant == tenant)
        if scopes is not None:
            query = query.where(scope_clause(c.tenant, c.project, scopes))
        if project is not None:
            query = query.where(c.project == project)
        if state is not None:
            query = query.where(c.state == state)
        if agent is not None:
            query = query.where(c.agent == agent)
        rows, next_cursor = await keyset_page(self.conn, query, (c.seq,), cursor, limit)
        return Page([_task(row) for row in rows], next_cursor)

    async def move(
        self, task_id: str, source: TaskState, target: TaskState, values: Mapping[str, Any]
    ) -> bool:
        """Move a task from ``source`` to ``target`` (checked) with other column values.

        False when the stored state is no longer ``source`` (someone else moved it first)."""
        check_task(source, target)
        query = (
            update(tasks)
            .where(tasks.c.id == task_id, tasks.c.state == source.value)
            .values(**values, state=target.value)
        )
        return (await self.conn.execute(query)).rowcount == 1

    async def move_many(
        self, task_ids: Sequence[str], source: TaskState, target: TaskState, now: datetime
    ) -> int:
        """Move every listed task that is still in ``source``; returns how many moved."""
        check_task(source, target)
        if not task_ids:
            return 0
        query = (
            update(tasks)
            .where(tasks.c.id.in_(task_ids), tasks.c.state == source.value)
            .values(state=target.value, updated_at=now)
        )
        return int((await self.conn.execute(query)).rowcount)

    async def update(self, task_id: str, values: Mapping[str, Any]) -> None:
        """Change columns other than the state (e.g. ``cancel_requested``)."""
        if "state" in values:
            raise ValueError("a task's state changes only through move()")
        await self.conn.execute(update(tasks).where(tasks.c.id == task_id).values(**values))

    async def delete_in_project(self, tenant: str, project: str) -> int:
        """Delete a project's tasks with their queue rows, runs, run events and commands (the
        project itself is being deleted). Returns how many tasks went."""
        c = tasks.c
        in_project = (c.tenant == tenant) & (c.project == project)
        seqs = select(c.seq).where(in_project).scalar_subquery()
        run_ids = (
            select(runs.c.id)
            .where(runs.c.tenant == tenant, runs.c.project == project)
            .scalar_subquery()
        )
        await self.conn.execute(delete(dispatch_queue).where(dispatch_queue.c.task_seq.in_(seqs)))
        await self.conn.execute(delete(run_events).where(run_events.c.run_id.in_(run_ids)))
        await self.conn.execute(delete(run_commands).where(run_commands.c.run_id.in_(run_ids)))
        await self.conn.execute(
            delete(runs).where(runs.c.tenant == tenant, runs.c.project == project)
        )
        return int((await self.conn.execute(delete(tasks).where(in_project))).rowcount)

    async def count_by_state(self, states: Sequence[str]) -> dict[str, int]:
        c = tasks.c
        query = select(c.state, func.count()).where(c.state.in_(states)).group_by(c.state)
        return {row[0]: int(row[1]) for row in (await self.conn.execute(query)).all()}


class QueueRepository:
    def __init__(self, conn: AsyncConnection, *, skip_locked: bool) -> None:
        self.conn = conn
        self.skip_locked = skip_locked

    async def enqueue(
        self, task_seq: int, agent_uids: Sequence[str], priority: int, not_before: datetime
    ) -> None:
        await self.conn.execute(
            insert(dispatch_queue),
            [
                {
                    "agent_uid": uid,
                    "task_seq": task_seq,
                    "priority": priority,
                    "not_before": not_before,
                }
                for uid in agent_uids
            ],
        )

    async def pick(self, agent_uid: str, now: datetime, limit: int) -> list[int]:
        """Task seqs an agent may claim now, best first (locked on PostgreSQL)."""
        q = dispatch_queue.c
        query = (
            select(q.task_seq)
            .where(q.agent_uid == agent_uid, q.not_before <= now)
            .order_by(q.priority.desc(), q.task_seq)
            .limit(limit)
        )
        if self.skip_locked:
            query = query.with_for_update(skip_locked=True)
        return [int(seq) for seq in (await self.conn.execute(query)).scalars().all()]

    async def remove(self, task_seqs: Sequence[int]) -> None:
        if task_seqs:
            await self.conn.execute(
                delete(dispatch_queue).where(dispatch_queue.c.task_seq.in_(task_seqs))
            )

    async def remove_agent(self, agent_uid: str) -> list[int]:
        """Drop an agent's queue rows; returns the tasks it was the last candidate of."""
        q = dispatch_queue.c
        seqs = [int(v) for v in (await self.conn.execute(
            select(q.task_seq).where(q.agent_uid == agent_uid)
        )).scalars().all()]  # fmt: skip
        if not seqs:
            return []
        await self.conn.execute(delete(dispatch_queue).where(q.agent_uid == agent_uid))
        still = select(q.task_seq).where(q.task_seq.in_(seqs))
        left = {int(v) for v in (await self.conn.execute(still)).scalars().all()}
        return [seq for seq in seqs if seq not in left]

    async def pending_by_agent(self) -> dict[str, int]:
        q = dispatch_queue.c
        query = select(q.agent_uid, func.count()).group_by(q.agent_uid)
        return {row[0]: int(row[1]) for row in (await self.conn.execute(query)).all()}

    async def next_ready_at(self, agent_uid: str, after: datetime) -> datetime | None:
        q = dispatch_queue.c
        query = select(func.min(q.not_before)).where(q.agent_uid == agent_uid, q.not_before > after)
        value = (await self.conn.execute(query)).scalar_one_or_none()
        return value  # type: ignore[no-any-return]
