"""Use cases of moderation: users report posts and comments; moderators list open
reports and dismiss them (hiding and unhiding posts and deleting comments live in
`posts` and `comments`, and close the target's open reports there). Every
moderator action writes an audit row (who, what, when, why) in its transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from kit.clock import utc_now
from kit.db import UnitOfWork
from services.content import domain, store
from services.content.comments import visible_comment, visible_post
from services.content.domain import LikeTarget, ModerationAction, Report, ReportStatus, Viewer


@dataclass(frozen=True)
class ReportPage:
    reports: list[Report]
    next_after: tuple[datetime, str] | None


@dataclass(frozen=True)
class ActionPage:
    actions: list[ModerationAction]
    next_before: int | None


class Moderation:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def report(self, viewer: Viewer, kind: str, target_id: str, reason: str) -> Report:
        target = domain.report_target(kind)
        reason = domain.text_field("reason", reason, domain.MAX_REASON, required=True)
        async with self._uow.write() as session:
            if target is LikeTarget.POST:
                found = (await visible_post(session, target_id, viewer)).id
            else:
                found = (await visible_comment(session, target_id, viewer)).id
            report = Report(
                id=str(uuid.uuid4()),
                reporter_id=viewer.user_id,
                target_kind=target.value,
                target_id=found,
                reason=reason,
                status=ReportStatus.OPEN,
                created_at=utc_now(),
            )
            await store.add_report(session, report)
        return report

    async def open(self, *, after: tuple[datetime, str] | None, limit: int) -> ReportPage:
        async with self._uow.read() as session:
            rows = await store.open_reports(session, after_=after, limit=limit)
        more = len(rows) > limit
        rows = rows[:limit]
        return ReportPage(rows, (rows[-1].created_at, rows[-1].id) if more else None)

    async def dismiss(self, viewer: Viewer, report_id: str, reason: str) -> Report:
        reason = domain.text_field("reason", reason, domain.MAX_REASON)
        async with self._uow.write() as session:
            report = (
                await store.get_report(session, report_id)
                if domain.plausible_id(report_id)
                else None
            )
            if report is None:
                raise domain.report_not_found(report_id)
            if report.status is not ReportStatus.OPEN:
                return report
            now = utc_now()
            await store.resolve_reports(
                session,
                status=ReportStatus.DISMISSED,
                moderator_id=viewer.user_id,
                now=now,
                report_id=report.id,
            )
            await store.audit(
                session,
                moderator_id=viewer.user_id,
                action="dismiss",
                target=(report.target_kind, report.target_id),
                reason=reason,
                now=now,
            )
        return replace(report, status=ReportStatus.DISMISSED)

    async def actions(self, *, before: int | None, limit: int) -> ActionPage:
        async with self._uow.read() as session:
            rows = await store.list_actions(session, before_seq=before, limit=limit)
        more = len(rows) > limit
        rows = rows[:limit]
        return ActionPage(rows, rows[-1].seq if more else None)
