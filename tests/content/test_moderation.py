"""Moderation over real gRPC on the real database: reports of posts and comments,
the open list for moderators, hide / unhide / dismiss / delete closing reports, the
author told, and one audit row per moderator action."""

from __future__ import annotations

import grpc

from klik.content.v1 import content_pb2
from tests.content.conftest import ContentStack, new_user
from tests.content.support import failure
from tests.content.test_notifications import inbox
from tests.content.test_posts import create, create_and_publish, sees
from tests.content.test_social import comment


async def report(
    stack: ContentStack, user: str, kind: str, target: str, reason: str = "spam"
) -> content_pb2.Report:
    reply = await stack.content.ReportContent(
        content_pb2.ReportContentRequest(target_kind=kind, target_id=target, reason=reason),
        metadata=stack.user(user),
    )
    made: content_pb2.Report = reply.report
    return made


async def open_reports(stack: ContentStack, moderator: str) -> list[tuple[str, str, str]]:
    page = await stack.content.ListReports(
        content_pb2.ListReportsRequest(page_size=100), metadata=stack.user(moderator, "moderator")
    )
    return [(r.target_kind, r.target_id, r.reason) for r in page.reports]


async def test_reports_hide_unhide_dismiss_and_the_audit(content: ContentStack) -> None:
    ann, bob, mod = new_user(), new_user(), new_user()
    post = await create_and_publish(content, ann)
    said = await comment(content, ann, post.id, "rude words")
    other = await create_and_publish(content, ann)

    await report(content, bob, "post", post.id, "spam")
    await report(content, bob, "comment", said.id, "rude")
    dismissed = await report(content, bob, "post", other.id, "meh")
    code, reason, _ = await failure(report(content, bob, "user", ann))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_TARGET_KIND")
    code, _, meta = await failure(report(content, bob, "post", post.id, " "))
    assert (code, meta["field"]) == (grpc.StatusCode.INVALID_ARGUMENT, "reason")
    draft = await create(content, ann)
    code, reason, _ = await failure(report(content, bob, "post", draft.id))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "POST_NOT_FOUND")

    code, _, _ = await failure(
        content.content.ListReports(content_pb2.ListReportsRequest(), metadata=content.user(bob))
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert await open_reports(content, mod) == [
        ("post", post.id, "spam"),
        ("comment", said.id, "rude"),
        ("post", other.id, "meh"),
    ]

    moderator = content.user(mod, "moderator")
    await content.content.HidePost(
        content_pb2.HidePostRequest(post_id=post.id, reason="spam indeed"), metadata=moderator
    )
    assert not await sees(content, bob, "user", post.id)
    await content.content.DeleteComment(
        content_pb2.DeleteCommentRequest(comment_id=said.id), metadata=moderator
    )
    closed = await content.content.DismissReport(
        content_pb2.DismissReportRequest(report_id=dismissed.id, reason="fine"), metadata=moderator
    )
    assert closed.report.status == "dismissed"
    assert await open_reports(content, mod) == []
    code, reason, _ = await failure(
        content.content.DismissReport(
            content_pb2.DismissReportRequest(report_id="nope"), metadata=moderator
        )
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "REPORT_NOT_FOUND")

    shown = await content.content.UnhidePost(
        content_pb2.UnhidePostRequest(post_id=post.id, reason="appeal"), metadata=moderator
    )
    assert shown.post.status == "published"
    assert await sees(content, bob, "user", post.id)
    code, _, _ = await failure(
        content.content.UnhidePost(
            content_pb2.UnhidePostRequest(post_id=post.id), metadata=content.user(ann)
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED

    audit = await content.content.ListModerationActions(
        content_pb2.ListModerationActionsRequest(page_size=2), metadata=moderator
    )
    rest = await content.content.ListModerationActions(
        content_pb2.ListModerationActionsRequest(page_token=audit.next_page_token),
        metadata=moderator,
    )
    actions = [*audit.actions, *rest.actions]
    assert [(a.action, a.target_kind, a.target_id, a.reason) for a in actions] == [
        ("unhide", "post", post.id, "appeal"),
        ("dismiss", "post", other.id, "fine"),
        ("delete", "comment", said.id, ""),
        ("hide", "post", post.id, "spam indeed"),
    ]
    assert {a.moderator_id for a in actions} == {mod}
    told = [(n.kind, n.text) for n in (await inbox(content, ann)).notifications]
    assert ("moderation", "A moderator hid your post: spam indeed") in told
