"""The generation service's tables (its own database only) and the queries on them.
The kit's outbox and processed-events tables are added by the kit's own migration
branch.

`jobs` is both the record of every job and the work queue (see queue.py): a job is
claimable while it is QUEUED or RUNNING and nobody holds an unexpired lease on it.
Every change of status is one conditional UPDATE (`... WHERE status IN (...)`), so
of two racing transitions (a worker finishing, a user cancelling) exactly one wins
and the loser sees it changed nothing."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, fields, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    Text,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from kit import daily
from kit.db import as_utc, dialect_insert
from services.generation.domain import (
    Job,
    Kind,
    Options,
    Result,
    Settlement,
    Status,
    Turn,
    Usage,
)

metadata = MetaData()

# SQLite only auto-increments an INTEGER PRIMARY KEY.
_SEQ = BigInteger().with_variant(Integer, "sqlite")

jobs = Table(
    "jobs",
    metadata,
    Column("seq", _SEQ, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("user_id", String(64), nullable=False),
    # NULL when the request had no key: NULLs never collide in the unique index.
    Column("idempotency_key", String(200), nullable=True),
    Column("fingerprint", String(64), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("status", String(12), nullable=False),
    Column("prompt", Text, nullable=False),
    Column("provider", String(100), nullable=False),
    Column("model", String(200), nullable=False),
    Column("options", Text, nullable=False),  # JSON of domain.Options
    Column("estimate", BigInteger, nullable=False),
    Column("cost_credits", BigInteger, nullable=False),
    Column("hold_id", String(36), nullable=False),
    Column("hold_expires_at", DateTime(timezone=True), nullable=False),
    Column("settlement", String(10), nullable=False),
    Column("provider_job_id", String(200), nullable=False),
    # The intent to start the job on its provider (Job.start_requested_at).
    Column("start_requested_at", DateTime(timezone=True), nullable=True),
    Column("result", Text, nullable=True),  # JSON of domain.Result
    Column("error_code", String(40), nullable=False),
    Column("error_message", Text, nullable=False),
    Column("deadline_at", DateTime(timezone=True), nullable=True),
    # The queue: who works on the job and until when; how often it was claimed.
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires_at", DateTime(timezone=True), nullable=True),
    Column("attempts", Integer, nullable=False),
    # The reply so far of a TEXT/CHAT job while it streams (Job.partial_text).
    Column("partial_text", Text, nullable=False, server_default=""),
    # The model alias a TEXT/CHAT job was created with (Job.alias); "" for none.
    Column("alias", String(200), nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ux_jobs_user_key", "user_id", "idempotency_key", unique=True),
    Index("ix_jobs_user_seq", "user_id", "seq"),
)

_ACTIVE = jobs.c.status.in_((Status.QUEUED.value, Status.RUNNING.value))
_UNSETTLED = jobs.c.settlement.in_((Settlement.CAPTURE.value, Settlement.RELEASE.value))
_INTERNAL = jobs.c.status.in_((Status.PENDING.value, Status.ABANDONED.value))
# The queue's, the settler's and the reaper's scans: each index only as large as the
# rows they look for.
Index("ix_jobs_active", jobs.c.seq, postgresql_where=_ACTIVE, sqlite_where=_ACTIVE)
Index("ix_jobs_unsettled", jobs.c.seq, postgresql_where=_UNSETTLED, sqlite_where=_UNSETTLED)
Index("ix_jobs_internal", jobs.c.created_at, postgresql_where=_INTERNAL, sqlite_where=_INTERNAL)


def dump_options(options: Options) -> str:
    data = asdict(options)
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


_OPTION_FIELDS = frozenset(field.name for field in fields(Options))


def load_options(text: str) -> Options:
    """Options as stored. Keys this version does not know are dropped: a row written
    by a newer replica (mid-deploy, or before a rollback) must still load, or it
    would block the queue for every replica of this version."""
    data = json.loads(text)
    data["history"] = tuple(Turn(**turn) for turn in data.get("history", ()))
    return Options(**{name: value for name, value in data.items() if name in _OPTION_FIELDS})


def _dump_result(result: Result) -> str:
    return json.dumps(asdict(result), separators=(",", ":"), sort_keys=True)


def _load_result(text: str | None) -> Result | None:
    if text is None:
        return None
    data = json.loads(text)
    data["usage"] = Usage(**data["usage"])
    return Result(**data)


def _job(row: Row[Any]) -> Job:
    return Job(
        id=row.id,
        seq=row.seq,
        user_id=row.user_id,
        kind=Kind(row.kind),
        status=Status(row.status),
        prompt=row.prompt,
        provider=row.provider,
        model=row.model,
        options=load_options(row.options),
        estimate=row.estimate,
        cost_credits=row.cost_credits,
        hold_id=row.hold_id,
        hold_expires_at=as_utc(row.hold_expires_at),
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        idempotency_key=row.idempotency_key or "",
        fingerprint=row.fingerprint,
        provider_job_id=row.provider_job_id,
        start_requested_at=None
        if row.start_requested_at is None
        else as_utc(row.start_requested_at),
        result=_load_result(row.result),
        error_code=row.error_code,
        error_message=row.error_message,
        settlement=Settlement(row.settlement),
        deadline_at=None if row.deadline_at is None else as_utc(row.deadline_at),
        attempts=row.attempts,
        partial_text=row.partial_text,
        alias=row.alias,
    )


async def add_pending(session: AsyncSession, job: Job) -> bool:
    """Insert a new PENDING job. False when a job with its (user, idempotency key)
    already exists: a copy of the request got there first (on PostgreSQL this waits
    for that copy's transaction to end)."""
    values = {
        "id": job.id,
        "user_id": job.user_id,
        "idempotency_key": job.idempotency_key or None,
        "fingerprint": job.fingerprint,
        "kind": job.kind.value,
        "status": Status.PENDING.value,
        "prompt": job.prompt,
        "provider": job.provider,
        "model": job.model,
        "options": dump_options(job.options),
        "estimate": job.estimate,
        "cost_credits": job.estimate,
        "hold_id": "",
        "hold_expires_at": job.hold_expires_at,
        "settlement": Settlement.NONE.value,
        "provider_job_id": "",
        "start_requested_at": None,
        "result": None,
        "error_code": "",
        "error_message": "",
        "deadline_at": None,
        "lease_owner": None,
        "lease_expires_at": None,
        "attempts": 0,
        "partial_text": "",
        "alias": job.alias,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
    }
    if not job.idempotency_key:
        await session.execute(insert(jobs).values(**values))
        return True
    statement = (
        dialect_insert(session, jobs)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["user_id", "idempotency_key"])
        .returning(jobs.c.id)
    )
    return (await session.execute(statement)).scalar_one_or_none() is not None


async def get(session: AsyncSession, job_id: str) -> Job | None:
    row = (await session.execute(select(jobs).where(jobs.c.id == job_id))).one_or_none()
    return None if row is None else _job(row)


async def by_key(session: AsyncSession, user_id: str, key: str) -> Job | None:
    row = (
        await session.execute(
            select(jobs).where(jobs.c.user_id == user_id, jobs.c.idempotency_key == key)
        )
    ).one_or_none()
    return None if row is None else _job(row)


async def page(
    session: AsyncSession, user_id: str, status: Status | None, before_seq: int | None, size: int
) -> list[Job]:
    """Up to `size` of the user's visible jobs, newest first, older than `before_seq`."""
    query = select(jobs).where(jobs.c.user_id == user_id)
    if status is None:
        query = query.where(jobs.c.status.not_in((Status.PENDING.value, Status.ABANDONED.value)))
    else:
        query = query.where(jobs.c.status == status.value)
    if before_seq is not None:
        query = query.where(jobs.c.seq < before_seq)
    rows = (await session.execute(query.order_by(jobs.c.seq.desc()).limit(size))).all()
    return [_job(row) for row in rows]


async def transition(
    session: AsyncSession,
    job_id: str,
    *,
    expect: Iterable[Status],
    owner: str | None = None,
    **values: Any,
) -> Job | None:
    """Change the job if its status is one of `expect` (and, given `owner`, that
    worker holds its lease); return it as it is now, or None when it changed nothing."""
    condition = (jobs.c.id == job_id) & jobs.c.status.in_([s.value for s in expect])
    if owner is not None:
        condition &= jobs.c.lease_owner == owner
    encoded = {key: _column_value(value) for key, value in values.items()}
    row = (
        await session.execute(update(jobs).where(condition).values(**encoded).returning(jobs))
    ).one_or_none()
    return None if row is None else _job(row)


def _column_value(value: Any) -> Any:
    if isinstance(value, Result):
        return _dump_result(value)
    if isinstance(value, Status | Settlement):
        return value.value
    return value


async def delete_internal(session: AsyncSession, job_id: str) -> None:
    """Forget a PENDING/ABANDONED row: no job came of it, so its key may be reused."""
    await session.execute(delete(jobs).where(jobs.c.id == job_id, _INTERNAL))


async def stale_internal(session: AsyncSession, older_than: datetime, limit: int) -> list[Job]:
    """PENDING rows nobody finished in time, and ABANDONED ones not yet cleaned up."""
    rows = (
        await session.execute(
            select(jobs)
            .where(_INTERNAL, jobs.c.created_at < older_than)
            .order_by(jobs.c.created_at)
            .limit(limit)
        )
    ).all()
    return [_job(row) for row in rows]


async def unsettled(session: AsyncSession, older_than: datetime, limit: int) -> list[Job]:
    """Finished jobs whose capture or release has not been confirmed."""
    rows = (
        await session.execute(
            select(jobs)
            .where(_UNSETTLED, jobs.c.updated_at < older_than)
            .order_by(jobs.c.seq)
            .limit(limit)
        )
    ).all()
    return [_job(row) for row in rows]


async def mark_settled(
    session: AsyncSession, job_id: str, expected: Settlement, now: Settlement
) -> None:
    await session.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.settlement == expected.value)
        .values(settlement=now.value)
    )


async def stored_provider_jobs(
    session: AsyncSession, provider: str, provider_job_ids: Iterable[str]
) -> set[str]:
    """Which of the provider's job ids some job already stored as its own."""
    ids = list(provider_job_ids)
    if not ids:
        return set()
    found = await session.execute(
        select(jobs.c.provider_job_id).where(
            jobs.c.provider == provider, jobs.c.provider_job_id.in_(ids)
        )
    )
    return set(found.scalars())


# ---- the queue -------------------------------------------------------------------------


_INTERACTIVE = jobs.c.kind.in_(tuple(kind.value for kind in Kind if kind.is_text))


def claimable(
    now: datetime, *, skip_providers: Iterable[str] = (), skip_users: Iterable[str] = ()
) -> Any:
    """Active jobs with no live lease: interactive kinds (TEXT, CHAT) first, then the
    oldest. Jobs on `skip_providers` (at their in-flight limit here) and of
    `skip_users` (at their per-user cap) are left for later, so they never hold up
    anyone else's."""
    query = select(jobs.c.id).where(
        _ACTIVE, (jobs.c.lease_expires_at.is_(None)) | (jobs.c.lease_expires_at < now)
    )
    if providers := tuple(skip_providers):
        query = query.where(jobs.c.provider.notin_(providers))
    if users := tuple(skip_users):
        query = query.where(jobs.c.user_id.notin_(users))
    return query.order_by(case((_INTERACTIVE, 0), else_=1), jobs.c.seq)


async def lease(session: AsyncSession, job_id: str, owner: str, until: datetime) -> Job | None:
    """Lease an active job to `owner`, counting an attempt."""
    row = (
        await session.execute(
            update(jobs)
            .where((jobs.c.id == job_id) & _ACTIVE)
            .values(lease_owner=owner, lease_expires_at=until, attempts=jobs.c.attempts + 1)
            .returning(jobs)
        )
    ).one_or_none()
    return None if row is None else _job(row)


async def release_leases(session: AsyncSession, replica: str, now: datetime) -> int:
    """End the live leases of `replica`'s workers (`<replica>/<n>`) now, so any
    replica may resume those jobs at once. The claims are given back: a drain's
    hand-over is not one of the job's `max_attempts` (a crash's expired lease is)."""
    result = await session.execute(
        update(jobs)
        .where(
            _ACTIVE
            & jobs.c.lease_owner.startswith(replica + "/", autoescape=True)
            & (jobs.c.lease_expires_at > now)
        )
        .values(
            lease_expires_at=now,
            attempts=case((jobs.c.attempts > 0, jobs.c.attempts - 1), else_=0),
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def renew(session: AsyncSession, job_id: str, owner: str, until: datetime) -> bool:
    """Extend `owner`'s lease of an active job; False when it is not theirs any more."""
    result = await session.execute(
        update(jobs)
        .where((jobs.c.id == job_id) & _ACTIVE & (jobs.c.lease_owner == owner))
        .values(lease_expires_at=until)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def renew_all(session: AsyncSession, leases: Mapping[str, str], until: datetime) -> set[str]:
    """Extend every lease in `leases` (job id -> owner) of an active job in one
    statement; the ids renewed (the others are no longer their owner's)."""
    if not leases:
        return set()
    renewed = await session.execute(
        update(jobs)
        .where(_ACTIVE & tuple_(jobs.c.id, jobs.c.lease_owner).in_(list(leases.items())))
        .values(lease_expires_at=until)
        .returning(jobs.c.id)
    )
    return set(renewed.scalars())


async def purge_user(session: AsyncSession, user_id: str) -> list[Job]:
    """Blank what a deleted user wrote and got back: the prompts, the replies
    streaming, and the text and file URL of the results, of all their jobs. The
    money columns stay (holds still settle) and so do usage figures. Returns the
    jobs as they were, so that their files can be removed."""
    rows = (
        await session.execute(
            select(jobs)
            .where(
                jobs.c.user_id == user_id,
                or_(jobs.c.prompt != "", jobs.c.partial_text != "", jobs.c.result.is_not(None)),
            )
            .with_for_update()
        )
    ).all()
    purged = [_job(row) for row in rows]
    for job in purged:
        blank = None if job.result is None else blanked(job.result)
        await session.execute(
            update(jobs)
            .where(jobs.c.id == job.id)
            .values(
                prompt="",
                partial_text="",
                result=None if blank is None else _dump_result(blank),
            )
        )
    return purged


def blanked(result: Result) -> Result:
    """A result without what a deleted user got back: its text and file; its usage
    stays (the money does)."""
    return replace(result, text="", asset_url="")


async def blank_result(session: AsyncSession, job: Job) -> Job:
    """Blank the result a job of a purged user stored (it finished after the purge)."""
    assert job.result is not None
    row = (
        await session.execute(
            update(jobs)
            .where(jobs.c.id == job.id)
            .values(result=_dump_result(blanked(job.result)), partial_text="")
            .returning(jobs)
        )
    ).one()
    return _job(row)


async def save_partial_texts(session: AsyncSession, replies: list[tuple[str, str, str]]) -> None:
    """Store streaming jobs' replies so far, (job id, lease owner, text) each, where
    the owner still runs the job and its user was not deleted meanwhile (a purged
    job's prompt is blank). One statement run for every reply (executemany: one
    round trip on PostgreSQL's pipeline)."""
    if not replies:
        return
    await session.execute(
        update(jobs)
        .where(
            (jobs.c.id == bindparam("b_job"))
            & (jobs.c.status == Status.RUNNING.value)
            & (jobs.c.lease_owner == bindparam("b_owner"))
            & (jobs.c.prompt != "")
        )
        .values(partial_text=bindparam("b_text")),
        [{"b_job": j, "b_owner": o, "b_text": t} for j, o, t in replies],
    )


# ---- job summaries -----------------------------------------------------------------

_PUBLIC = (
    Status.QUEUED.value,
    Status.RUNNING.value,
    Status.SUCCEEDED.value,
    Status.FAILED.value,
    Status.CANCELLED.value,
)
_ENDED = (Status.SUCCEEDED.value, Status.FAILED.value)
Index("ix_jobs_created_at", jobs.c.created_at)
Index("ix_jobs_updated_at", jobs.c.updated_at)


async def jobs_per_day(session: AsyncSession, since: datetime) -> list[tuple[str, str, str, int]]:
    """(UTC day created, status, kind, jobs) of the jobs created since `since`
    (internal statuses left out)."""
    day = daily.utc_day(jobs.c.created_at)
    rows = await session.execute(
        select(day, jobs.c.status, jobs.c.kind, func.count())
        .where(jobs.c.created_at >= since, jobs.c.status.in_(_PUBLIC))
        .group_by(day, jobs.c.status, jobs.c.kind)
    )
    return [(row[0], row[1], row[2], int(row[3])) for row in rows]


async def ended_by_provider(session: AsyncSession, since: datetime) -> list[tuple[str, str, int]]:
    """(provider, SUCCEEDED or FAILED, jobs) of the jobs that ended since `since`."""
    rows = await session.execute(
        select(jobs.c.provider, jobs.c.status, func.count())
        .where(jobs.c.updated_at >= since, jobs.c.status.in_(_ENDED))
        .group_by(jobs.c.provider, jobs.c.status)
    )
    return [(row[0], row[1], int(row[2])) for row in rows]
