"""gRPC servicer of the content service: who is calling, proto ⇄ domain, cursors.
The rules live in `domain`, the use cases in `posts`, `chats`, `assistants` and
`lessons`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, TypeAlias, TypeVar

import grpc

from kit import paging
from kit.assets import AssetSettings, open_asset_store
from kit.assets.uploads import UploadSettings
from kit.callers import Caller
from kit.server import Resources
from kit.timestamps import timestamp
from klik.content.v1 import avatars_pb2, avatars_pb2_grpc, content_pb2, content_pb2_grpc
from services.content import domain
from services.content.assistants import Assistants
from services.content.avatars import Avatars
from services.content.chats import Chats
from services.content.comments import Comments, Likes, LikeState
from services.content.domain import (
    Asset,
    AssistantView,
    Chat,
    CommentView,
    Lesson,
    Message,
    ModerationAction,
    PostView,
    Profile,
    Report,
    Viewer,
)
from services.content.follows import Follows
from services.content.generation_client import Generation
from services.content.lessons import Lessons
from services.content.moderation import Moderation
from services.content.notifications import Notifications, NotificationView
from services.content.posts import Library, Posts
from services.content.search import (
    LessonHit,
    PostHit,
    Search,
    SearchCursor,
    SearchType,
    query_terms,
    search_type,
)
from services.content.uploads import Uploads

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]

LIST_POSTS = paging.TimeCursor("content.ListPosts")
LIST_ASSETS = paging.SeqCursor("content.ListAssets")
LIST_CHATS = paging.TimeCursor("content.ListChats")
LIST_LESSONS = paging.TimeCursor("content.ListLessons")
LIST_COMMENTS = paging.TimeCursor("content.ListComments")
LIST_FOLLOWERS = paging.TimeCursor("content.ListFollowers")
LIST_FOLLOWING = paging.TimeCursor("content.ListFollowing")
FOLLOWING_FEED = paging.TimeCursor("content.ListFollowingFeed")
PROFILE_PAGE = paging.TimeCursor("content.GetProfilePage")
LIST_NOTIFICATIONS = paging.TimeCursor("content.ListNotifications")
MAX_READ_IDS = 100
LIST_REPORTS = paging.TimeCursor("content.ListReports")
LIST_ACTIONS = paging.SeqCursor("content.ListModerationActions")
LIST_ASSISTANTS = paging.TimeCursor("content.ListAssistants")
LIST_PUBLIC_ASSISTANTS = paging.TimeCursor("content.ListPublicAssistants")
LESSON_CATALOG = paging.TimeCursor("content.ListLessonCatalog")
SEARCH = SearchCursor()


def profile_message(profile: Profile) -> content_pb2.Profile:
    return content_pb2.Profile(
        user_id=profile.user_id,
        handle=profile.handle,
        display_name=profile.display_name,
        avatar_url=profile.avatar_url,
    )


def post_message(view: PostView) -> content_pb2.Post:
    post = view.post
    return content_pb2.Post(
        id=post.id,
        author_id=post.author_id,
        title=post.title,
        body=post.body,
        asset_ids=list(post.asset_ids),
        visibility=post.visibility.value,
        status=post.status.value,
        created_at=timestamp(post.created_at),
        updated_at=timestamp(post.updated_at),
        author=profile_message(view.author),
        like_count=post.like_count,
        comment_count=post.comment_count,
        liked_by_me=view.liked_by_me,
        assets=[asset_message(asset) for asset in view.assets],
    )


def comment_message(view: CommentView) -> content_pb2.Comment:
    comment = view.comment
    return content_pb2.Comment(
        id=comment.id,
        post_id=comment.post_id,
        parent_id=comment.parent_id,
        author=profile_message(view.author),
        body=comment.body,
        like_count=comment.like_count,
        liked_by_me=view.liked_by_me,
        created_at=timestamp(comment.created_at),
        updated_at=timestamp(comment.updated_at),
    )


LikeReply = TypeVar(
    "LikeReply",
    content_pb2.LikePostResponse,
    content_pb2.UnlikePostResponse,
    content_pb2.LikeCommentResponse,
    content_pb2.UnlikeCommentResponse,
)


def like_message(reply: type[LikeReply], state: LikeState) -> LikeReply:
    return reply(like_count=state.like_count, liked_by_me=state.liked_by_me)


def notification_message(view: NotificationView) -> content_pb2.Notification:
    row = view.notification
    message = content_pb2.Notification(
        id=row.id,
        kind=row.kind.value,
        text=view.text,
        subject_id=row.subject_id,
        post_id=row.post_id,
        count=row.count,
        read=row.read,
        created_at=timestamp(row.created_at),
    )
    if view.actor is not None:
        message.actor.CopyFrom(profile_message(view.actor))
    return message


def report_message(report: Report) -> content_pb2.Report:
    return content_pb2.Report(
        id=report.id,
        reporter_id=report.reporter_id,
        target_kind=report.target_kind,
        target_id=report.target_id,
        reason=report.reason,
        status=report.status.value,
        created_at=timestamp(report.created_at),
    )


def action_message(action: ModerationAction) -> content_pb2.ModerationAction:
    return content_pb2.ModerationAction(
        moderator_id=action.moderator_id,
        action=action.action,
        target_kind=action.target_kind,
        target_id=action.target_id,
        reason=action.reason,
        created_at=timestamp(action.created_at),
    )


def asset_message(asset: Asset) -> content_pb2.Asset:
    return content_pb2.Asset(
        id=asset.id,
        owner_id=asset.owner_id,
        job_id=asset.job_id,
        kind=asset.kind,
        text=asset.text,
        url=asset.url,
        mime_type=asset.mime_type,
        created_at=timestamp(asset.created_at),
    )


def chat_message(message: Message) -> content_pb2.ChatMessage:
    return content_pb2.ChatMessage(
        id=message.id,
        role=message.role.value,
        content=message.content,
        job_id=message.job_id,
        created_at=timestamp(message.created_at),
    )


def chat_proto(chat: Chat, messages: Sequence[Message] = ()) -> content_pb2.Chat:
    return content_pb2.Chat(
        id=chat.id,
        owner_id=chat.owner_id,
        title=chat.title,
        model=chat.answering_model,
        messages=[chat_message(message) for message in messages],
        created_at=timestamp(chat.created_at),
        updated_at=timestamp(chat.updated_at),
        assistant_id=chat.assistant_id,
    )


def assistant_message(view: AssistantView, viewer: Viewer) -> content_pb2.Assistant:
    """The assistant as `viewer` sees it: its instructions are its owner's only."""
    assistant = view.assistant
    message = content_pb2.Assistant(
        id=assistant.id,
        owner_id=assistant.owner_id,
        name=assistant.name,
        description=assistant.description,
        instructions=assistant.instructions if assistant.owner_id == viewer.user_id else "",
        model=assistant.model,
        visibility=assistant.visibility.value,
        owner=profile_message(view.owner),
        created_at=timestamp(assistant.created_at),
        updated_at=timestamp(assistant.updated_at),
    )
    if assistant.temperature is not None:
        message.temperature = assistant.temperature
    return message


def lesson_message(lesson: Lesson) -> content_pb2.Lesson:
    return content_pb2.Lesson(
        id=lesson.id,
        owner_id=lesson.owner_id,
        topic=lesson.topic,
        content_type=lesson.content_type.value,
        difficulty=lesson.difficulty,
        status=lesson.status.value,
        body=lesson.body,
        job_id=lesson.job_id,
        created_at=timestamp(lesson.created_at),
        published_at=None if lesson.published_at is None else timestamp(lesson.published_at),
    )


def _viewer(caller: Caller) -> Viewer:
    return Viewer(caller.user_id, caller.role)


class ContentApi(content_pb2_grpc.ContentServiceServicer):
    """klik.content.v1.ContentService."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        generation = Generation(lambda: resources.channel("generation"))
        self.generation = generation
        self.posts = Posts(resources.uow)
        self.comments = Comments(resources.uow)
        self.likes = Likes(resources.uow)
        self.follows = Follows(resources.uow)
        self.notifications = Notifications(resources.uow)
        self.moderation = Moderation(resources.uow)
        self.library = Library(resources.uow)
        self.chats = Chats(resources.uow, generation)
        self.lessons = Lessons(resources.uow, generation)
        self.assistants = Assistants(resources.uow, generation)
        asset_settings = AssetSettings.from_env()
        self.uploads = Uploads(
            resources.uow,
            open_asset_store(asset_settings),
            asset_settings,
            UploadSettings.from_env(),
        )
        self.search = Search(resources.uow)

    async def _caller(self, context: Context, *roles: str) -> Caller:
        return await self.resources.callers.user(context, *roles)

    # ---- posts -----------------------------------------------------------------------

    async def CreatePost(
        self, request: content_pb2.CreatePostRequest, context: Context
    ) -> content_pb2.CreatePostResponse:
        viewer = _viewer(await self._caller(context))
        draft = domain.post_draft(
            request.title, request.body, request.asset_ids, request.visibility
        )
        post = await self.posts.create(viewer, draft)
        return content_pb2.CreatePostResponse(post=post_message(post))

    async def GetPost(
        self, request: content_pb2.GetPostRequest, context: Context
    ) -> content_pb2.GetPostResponse:
        viewer = _viewer(await self._caller(context))
        post = await self.posts.get(viewer, request.post_id)
        return content_pb2.GetPostResponse(post=post_message(post))

    async def ListPosts(
        self, request: content_pb2.ListPostsRequest, context: Context
    ) -> content_pb2.ListPostsResponse:
        viewer = _viewer(await self._caller(context))
        size = paging.page_size(request.page_size)
        after = LIST_POSTS.decode(request.page_token)
        page = await self.posts.feed(viewer, author_id=request.author_id, after=after, limit=size)
        return content_pb2.ListPostsResponse(
            posts=[post_message(post) for post in page.posts],
            next_page_token=LIST_POSTS.encode(page.next_after),
        )

    async def UpdatePost(
        self, request: content_pb2.UpdatePostRequest, context: Context
    ) -> content_pb2.UpdatePostResponse:
        viewer = _viewer(await self._caller(context))
        paths = domain.update_paths(list(request.update_mask.paths))
        changes = domain.post_changes(
            paths,
            title=request.post.title,
            body=request.post.body,
            ids=request.post.asset_ids,
            visibility_=request.post.visibility,
        )
        post = await self.posts.update(viewer, request.post_id, changes)
        return content_pb2.UpdatePostResponse(post=post_message(post))

    async def DeletePost(
        self, request: content_pb2.DeletePostRequest, context: Context
    ) -> content_pb2.DeletePostResponse:
        viewer = _viewer(await self._caller(context))
        await self.posts.delete(viewer, request.post_id)
        return content_pb2.DeletePostResponse()

    async def PublishPost(
        self, request: content_pb2.PublishPostRequest, context: Context
    ) -> content_pb2.PublishPostResponse:
        viewer = _viewer(await self._caller(context))
        post = await self.posts.publish(viewer, request.post_id)
        return content_pb2.PublishPostResponse(post=post_message(post))

    async def HidePost(
        self, request: content_pb2.HidePostRequest, context: Context
    ) -> content_pb2.HidePostResponse:
        viewer = _viewer(await self._caller(context, *domain.STAFF_ROLES))
        reason = domain.text_field("reason", request.reason, domain.MAX_REASON)
        post = await self.posts.hide(viewer, request.post_id, reason)
        return content_pb2.HidePostResponse(post=post_message(post))

    # ---- comments and likes --------------------------------------------------------

    async def CreateComment(
        self, request: content_pb2.CreateCommentRequest, context: Context
    ) -> content_pb2.CreateCommentResponse:
        viewer = _viewer(await self._caller(context))
        comment = await self.comments.create(
            viewer, request.post_id, request.body, request.parent_id
        )
        return content_pb2.CreateCommentResponse(comment=comment_message(comment))

    async def ListComments(
        self, request: content_pb2.ListCommentsRequest, context: Context
    ) -> content_pb2.ListCommentsResponse:
        viewer = _viewer(await self._caller(context))
        size = paging.page_size(request.page_size)
        after = LIST_COMMENTS.decode(request.page_token)
        page = await self.comments.list(viewer, request.post_id, after=after, limit=size)
        return content_pb2.ListCommentsResponse(
            comments=[comment_message(comment) for comment in page.comments],
            next_page_token=LIST_COMMENTS.encode(page.next_after),
        )

    async def UpdateComment(
        self, request: content_pb2.UpdateCommentRequest, context: Context
    ) -> content_pb2.UpdateCommentResponse:
        viewer = _viewer(await self._caller(context))
        comment = await self.comments.edit(viewer, request.comment_id, request.body)
        return content_pb2.UpdateCommentResponse(comment=comment_message(comment))

    async def DeleteComment(
        self, request: content_pb2.DeleteCommentRequest, context: Context
    ) -> content_pb2.DeleteCommentResponse:
        viewer = _viewer(await self._caller(context))
        await self.comments.delete(viewer, request.comment_id)
        return content_pb2.DeleteCommentResponse()

    async def LikePost(
        self, request: content_pb2.LikePostRequest, context: Context
    ) -> content_pb2.LikePostResponse:
        viewer = _viewer(await self._caller(context))
        state = await self.likes.post(viewer, request.post_id, like=True)
        return like_message(content_pb2.LikePostResponse, state)

    async def UnlikePost(
        self, request: content_pb2.UnlikePostRequest, context: Context
    ) -> content_pb2.UnlikePostResponse:
        viewer = _viewer(await self._caller(context))
        state = await self.likes.post(viewer, request.post_id, like=False)
        return like_message(content_pb2.UnlikePostResponse, state)

    async def LikeComment(
        self, request: content_pb2.LikeCommentRequest, context: Context
    ) -> content_pb2.LikeCommentResponse:
        viewer = _viewer(await self._caller(context))
        state = await self.likes.comment(viewer, request.comment_id, like=True)
        return like_message(content_pb2.LikeCommentResponse, state)

    async def UnlikeComment(
        self, request: content_pb2.UnlikeCommentRequest, context: Context
    ) -> content_pb2.UnlikeCommentResponse:
        viewer = _viewer(await self._caller(context))
        state = await self.likes.comment(viewer, request.comment_id, like=False)
        return like_message(content_pb2.UnlikeCommentResponse, state)

    # ---- follows ---------------------------------------------------------------------

    async def FollowUser(
        self, request: content_pb2.FollowUserRequest, context: Context
    ) -> content_pb2.FollowUserResponse:
        viewer = _viewer(await self._caller(context))
        profile = await self.follows.follow(viewer, request.user_id)
        return content_pb2.FollowUserResponse(profile=profile_message(profile))

    async def UnfollowUser(
        self, request: content_pb2.UnfollowUserRequest, context: Context
    ) -> content_pb2.UnfollowUserResponse:
        viewer = _viewer(await self._caller(context))
        await self.follows.unfollow(viewer, request.user_id)
        return content_pb2.UnfollowUserResponse()

    async def ListFollowers(
        self, request: content_pb2.ListFollowersRequest, context: Context
    ) -> content_pb2.ListFollowersResponse:
        await self._caller(context)
        size = paging.page_size(request.page_size)
        after = LIST_FOLLOWERS.decode(request.page_token)
        page = await self.follows.list(request.user_id, followers=True, after=after, limit=size)
        return content_pb2.ListFollowersResponse(
            profiles=[profile_message(profile) for profile in page.profiles],
            next_page_token=LIST_FOLLOWERS.encode(page.next_after),
        )

    async def ListFollowing(
        self, request: content_pb2.ListFollowingRequest, context: Context
    ) -> content_pb2.ListFollowingResponse:
        await self._caller(context)
        size = paging.page_size(request.page_size)
        after = LIST_FOLLOWING.decode(request.page_token)
        page = await self.follows.list(request.user_id, followers=False, after=after, limit=size)
        return content_pb2.ListFollowingResponse(
            profiles=[profile_message(profile) for profile in page.profiles],
            next_page_token=LIST_FOLLOWING.encode(page.next_after),
        )

    async def ListFollowingFeed(
        self, request: content_pb2.ListFollowingFeedRequest, context: Context
    ) -> content_pb2.ListFollowingFeedResponse:
        viewer = _viewer(await self._caller(context))
        size = paging.page_size(request.page_size)
        after = FOLLOWING_FEED.decode(request.page_token)
        page = await self.follows.feed(viewer, after=after, limit=size)
        return content_pb2.ListFollowingFeedResponse(
            posts=[post_message(post) for post in page.posts],
            next_page_token=FOLLOWING_FEED.encode(page.next_after),
        )

    async def GetProfilePage(
        self, request: content_pb2.GetProfilePageRequest, context: Context
    ) -> content_pb2.GetProfilePageResponse:
        viewer = _viewer(await self._caller(context))
        size = paging.page_size(request.page_size)
        after = PROFILE_PAGE.decode(request.page_token)
        profile, page = await self.follows.page(viewer, request.handle, after=after, limit=size)
        return content_pb2.GetProfilePageResponse(
            profile=profile_message(profile),
            posts=[post_message(post) for post in page.posts],
            next_page_token=PROFILE_PAGE.encode(page.next_after),
        )

    # ---- notifications ---------------------------------------------------------------

    async def ListNotifications(
        self, request: content_pb2.ListNotificationsRequest, context: Context
    ) -> content_pb2.ListNotificationsResponse:
        viewer = _viewer(await self._caller(context))
        size = paging.page_size(request.page_size)
        after = LIST_NOTIFICATIONS.decode(request.page_token)
        page = await self.notifications.list(viewer, after=after, limit=size)
        return content_pb2.ListNotificationsResponse(
            notifications=[notification_message(view) for view in page.notifications],
            unread_count=page.unread_count,
            next_page_token=LIST_NOTIFICATIONS.encode(page.next_after),
        )

    async def MarkNotificationsRead(
        self, request: content_pb2.MarkNotificationsReadRequest, context: Context
    ) -> content_pb2.MarkNotificationsReadResponse:
        viewer = _viewer(await self._caller(context))
        ids = domain.read_ids(list(request.ids), request.all, MAX_READ_IDS)
        unread = await self.notifications.mark_read(viewer, ids)
        return content_pb2.MarkNotificationsReadResponse(unread_count=unread)

    async def MuteUser(
        self, request: content_pb2.MuteUserRequest, context: Context
    ) -> content_pb2.MuteUserResponse:
        viewer = _viewer(await self._caller(context))
        await self.notifications.mute(viewer, request.user_id, on=True)
        return content_pb2.MuteUserResponse()

    async def UnmuteUser(
        self, request: content_pb2.UnmuteUserRequest, context: Context
    ) -> content_pb2.UnmuteUserResponse:
        viewer = _viewer(await self._caller(context))
        await self.notifications.mute(viewer, request.user_id, on=False)
        return content_pb2.UnmuteUserResponse()

    # ---- moderation ------------------------------------------------------------------

    async def ReportContent(
        self, request: content_pb2.ReportContentRequest, context: Context
    ) -> content_pb2.ReportContentResponse:
        viewer = _viewer(await self._caller(context))
        report = await self.moderation.report(
            viewer, request.target_kind, request.target_id, request.reason
        )
        return content_pb2.ReportContentResponse(report=report_message(report))

    async def ListReports(
        self, request: content_pb2.ListReportsRequest, context: Context
    ) -> content_pb2.ListReportsResponse:
        await self._caller(context, *domain.STAFF_ROLES)
        size = paging.page_size(request.page_size)
        after = LIST_REPORTS.decode(request.page_token)
        page = await self.moderation.open(after=after, limit=size)
        return content_pb2.ListReportsResponse(
            reports=[report_message(report) for report in page.reports],
            next_page_token=LIST_REPORTS.encode(page.next_after),
        )

    async def DismissReport(
        self, request: content_pb2.DismissReportRequest, context: Context
    ) -> content_pb2.DismissReportResponse:
        viewer = _viewer(await self._caller(context, *domain.STAFF_ROLES))
        report = await self.moderation.dismiss(viewer, request.report_id, request.reason)
        return content_pb2.DismissReportResponse(report=report_message(report))

    async def UnhidePost(
        self, request: content_pb2.UnhidePostRequest, context: Context
    ) -> content_pb2.UnhidePostResponse:
        viewer = _viewer(await self._caller(context, *domain.STAFF_ROLES))
        reason = domain.text_field("reason", request.reason, domain.MAX_REASON)
        post = await self.posts.unhide(viewer, request.post_id, reason)
        return content_pb2.UnhidePostResponse(post=post_message(post))

    async def ListModerationActions(
        self, request: content_pb2.ListModerationActionsRequest, context: Context
    ) -> content_pb2.ListModerationActionsResponse:
        await self._caller(context, *domain.STAFF_ROLES)
        size = paging.page_size(request.page_size)
        before = LIST_ACTIONS.decode(request.page_token)
        page = await self.moderation.actions(before=before, limit=size)
        return content_pb2.ListModerationActionsResponse(
            actions=[action_message(action) for action in page.actions],
            next_page_token=LIST_ACTIONS.encode(page.next_before),
        )

    # ---- assets ----------------------------------------------------------------------

    async def ListAssets(
        self, request: content_pb2.ListAssetsRequest, context: Context
    ) -> content_pb2.ListAssetsResponse:
        viewer = _viewer(await self._caller(context))
        kind = domain.job_kind(request.kind)
        size = paging.page_size(request.page_size)
        before = LIST_ASSETS.decode(request.page_token)
        page = await self.library.list(viewer, kind=kind, before=before, limit=size)
        return content_pb2.ListAssetsResponse(
            assets=[asset_message(asset) for asset in page.assets],
            next_page_token=LIST_ASSETS.encode(page.next_before),
        )

    async def GetAsset(
        self, request: content_pb2.GetAssetRequest, context: Context
    ) -> content_pb2.GetAssetResponse:
        viewer = _viewer(await self._caller(context))
        asset = await self.library.get(viewer, request.asset_id)
        return content_pb2.GetAssetResponse(asset=asset_message(asset))

    # ---- chats -----------------------------------------------------------------------

    async def CreateChat(
        self, request: content_pb2.CreateChatRequest, context: Context
    ) -> content_pb2.CreateChatResponse:
        caller = await self._caller(context)
        chat = await self.chats.create(
            _viewer(caller), caller.token, request.title, request.model, request.assistant_id
        )
        return content_pb2.CreateChatResponse(chat=chat_proto(chat))

    async def ListChats(
        self, request: content_pb2.ListChatsRequest, context: Context
    ) -> content_pb2.ListChatsResponse:
        viewer = _viewer(await self._caller(context))
        size = paging.page_size(request.page_size)
        after = LIST_CHATS.decode(request.page_token)
        page = await self.chats.list(viewer, after=after, limit=size)
        return content_pb2.ListChatsResponse(
            chats=[chat_proto(chat) for chat in page.chats],
            next_page_token=LIST_CHATS.encode(page.next_after),
        )

    async def GetChat(
        self, request: content_pb2.GetChatRequest, context: Context
    ) -> content_pb2.GetChatResponse:
        viewer = _viewer(await self._caller(context))
        chat, messages = await self.chats.get(viewer, request.chat_id)
        return content_pb2.GetChatResponse(chat=chat_proto(chat, messages))

    async def SendMessage(
        self, request: content_pb2.SendMessageRequest, context: Context
    ) -> content_pb2.SendMessageResponse:
        caller = await self._caller(context)
        sent = await self.chats.send(
            _viewer(caller),
            caller.token,
            request.chat_id,
            request.content,
            request.idempotency_key,
        )
        return content_pb2.SendMessageResponse(
            message=chat_message(sent.message), job_id=sent.job_id
        )

    async def StreamMessage(
        self, request: content_pb2.StreamMessageRequest, context: Context
    ) -> AsyncIterator[content_pb2.StreamMessageResponse]:
        caller = await self._caller(context)
        sent = await self.chats.send(
            _viewer(caller),
            caller.token,
            request.chat_id,
            request.content,
            request.idempotency_key,
        )
        yield content_pb2.StreamMessageResponse(
            sent=content_pb2.SendMessageResponse(
                message=chat_message(sent.message), job_id=sent.job_id
            )
        )
        async for event in self.generation.watch_job(caller.token, sent.job_id):
            reply = content_pb2.StreamMessageResponse(event_id=event.event_id)
            which = event.WhichOneof("event")
            if which is not None:
                getattr(reply, which).CopyFrom(getattr(event, which))
            yield reply

    # ---- lessons ---------------------------------------------------------------------

    async def CreateLesson(
        self, request: content_pb2.CreateLessonRequest, context: Context
    ) -> content_pb2.CreateLessonResponse:
        caller = await self._caller(context)
        lesson = await self.lessons.create(
            _viewer(caller),
            caller.token,
            topic=request.topic,
            content_type=request.content_type,
            difficulty=request.difficulty,
            key=request.idempotency_key,
        )
        return content_pb2.CreateLessonResponse(lesson=lesson_message(lesson))

    async def GetLesson(
        self, request: content_pb2.GetLessonRequest, context: Context
    ) -> content_pb2.GetLessonResponse:
        viewer = _viewer(await self._caller(context))
        lesson = await self.lessons.get(viewer, request.lesson_id)
        return content_pb2.GetLessonResponse(lesson=lesson_message(lesson))

    async def ListLessons(
        self, request: content_pb2.ListLessonsRequest, context: Context
    ) -> content_pb2.ListLessonsResponse:
        viewer = _viewer(await self._caller(context))
        size = paging.page_size(request.page_size)
        after = LIST_LESSONS.decode(request.page_token)
        kind = domain.content_type_filter(request.content_type)
        page = await self.lessons.list(viewer, content_type=kind, after=after, limit=size)
        return content_pb2.ListLessonsResponse(
            lessons=[lesson_message(lesson) for lesson in page.lessons],
            next_page_token=LIST_LESSONS.encode(page.next_after),
        )

    async def PublishLesson(
        self, request: content_pb2.PublishLessonRequest, context: Context
    ) -> content_pb2.PublishLessonResponse:
        viewer = _viewer(await self._caller(context))
        lesson = await self.lessons.publish(viewer, request.lesson_id)
        return content_pb2.PublishLessonResponse(lesson=lesson_message(lesson))

    # ---- assistants and managed chats -----------------------------------------------

    async def CreateAssistant(
        self, request: content_pb2.CreateAssistantRequest, context: Context
    ) -> content_pb2.CreateAssistantResponse:
        caller = await self._caller(context)
        viewer = _viewer(caller)
        draft = domain.assistant_draft(
            name=request.name,
            description=request.description,
            instructions_=request.instructions,
            model=request.model,
            temperature_=request.temperature if request.HasField("temperature") else None,
            visibility_=request.visibility,
        )
        view = await self.assistants.create(viewer, caller.token, draft, request.idempotency_key)
        return content_pb2.CreateAssistantResponse(assistant=assistant_message(view, viewer))

    async def ListAssistants(
        self, request: content_pb2.ListAssistantsRequest, context: Context
    ) -> content_pb2.ListAssistantsResponse:
        viewer = _viewer(await self._caller(context))
        size = paging.page_size(request.page_size)
        after = LIST_ASSISTANTS.decode(request.page_token)
        page = await self.assistants.list(viewer, public=False, after=after, limit=size)
        return content_pb2.ListAssistantsResponse(
            assistants=[assistant_message(view, viewer) for view in page.assistants],
            next_page_token=LIST_ASSISTANTS.encode(page.next_after),
        )

    async def ListPublicAssistants(
        self, request: content_pb2.ListPublicAssistantsRequest, context: Context
    ) -> content_pb2.ListPublicAssistantsResponse:
        viewer = _viewer(await self._caller(context))
        size = paging.page_size(request.page_size)
        after = LIST_PUBLIC_ASSISTANTS.decode(request.page_token)
        page = await self.assistants.list(viewer, public=True, after=after, limit=size)
        return content_pb2.ListPublicAssistantsResponse(
            assistants=[assistant_message(view, viewer) for view in page.assistants],
            next_page_token=LIST_PUBLIC_ASSISTANTS.encode(page.next_after),
        )

    async def GetAssistant(
        self, request: content_pb2.GetAssistantRequest, context: Context
    ) -> content_pb2.GetAssistantResponse:
        viewer = _viewer(await self._caller(context))
        view = await self.assistants.get(viewer, request.assistant_id)
        return content_pb2.GetAssistantResponse(assistant=assistant_message(view, viewer))

    async def UpdateAssistant(
        self, request: content_pb2.UpdateAssistantRequest, context: Context
    ) -> content_pb2.UpdateAssistantResponse:
        caller = await self._caller(context)
        viewer = _viewer(caller)
        new = request.assistant
        changes = domain.assistant_changes(
            list(request.update_mask.paths),
            name=new.name,
            description=new.description,
            instructions_=new.instructions,
            model=new.model,
            temperature_=new.temperature if new.HasField("temperature") else None,
            visibility_=new.visibility,
        )
        view = await self.assistants.update(viewer, caller.token, request.assistant_id, changes)
        return content_pb2.UpdateAssistantResponse(assistant=assistant_message(view, viewer))

    async def DeleteAssistant(
        self, request: content_pb2.DeleteAssistantRequest, context: Context
    ) -> content_pb2.DeleteAssistantResponse:
        viewer = _viewer(await self._caller(context))
        await self.assistants.delete(viewer, request.assistant_id)
        return content_pb2.DeleteAssistantResponse()

    async def UpdateChat(
        self, request: content_pb2.UpdateChatRequest, context: Context
    ) -> content_pb2.UpdateChatResponse:
        viewer = _viewer(await self._caller(context))
        chat = await self.chats.rename(viewer, request.chat_id, request.title)
        return content_pb2.UpdateChatResponse(chat=chat_proto(chat))

    async def DeleteChat(
        self, request: content_pb2.DeleteChatRequest, context: Context
    ) -> content_pb2.DeleteChatResponse:
        viewer = _viewer(await self._caller(context))
        await self.chats.delete(viewer, request.chat_id)
        return content_pb2.DeleteChatResponse()

    # ---- Uploads ----

    async def CreateUpload(
        self, request: content_pb2.CreateUploadRequest, context: Context
    ) -> content_pb2.CreateUploadResponse:
        viewer = _viewer(await self._caller(context))
        granted = await self.uploads.create(
            viewer, request.content_type, request.size, key=request.idempotency_key
        )
        return content_pb2.CreateUploadResponse(
            upload_id=granted.upload_id,
            upload_url=granted.upload_url,
            expires_at=timestamp(granted.expires_at),
        )

    async def CompleteUpload(
        self, request: content_pb2.CompleteUploadRequest, context: Context
    ) -> content_pb2.CompleteUploadResponse:
        viewer = _viewer(await self._caller(context))
        asset = await self.uploads.complete(viewer, request.upload_id)
        return content_pb2.CompleteUploadResponse(asset=asset_message(asset))

    # ---- search and lessons, managed ---------------------------------------------------

    async def Search(
        self, request: content_pb2.SearchRequest, context: Context
    ) -> content_pb2.SearchResponse:
        viewer = _viewer(await self._caller(context))
        kind = search_type(request.type)
        terms = query_terms(request.q)
        size = paging.page_size(request.page_size)
        after = SEARCH.decode(kind, terms, request.page_token)
        if kind is SearchType.POSTS:
            page = await self.search.posts(viewer, terms, after=after, limit=size)
        else:
            page = await self.search.lessons(terms, after=after, limit=size)
        return content_pb2.SearchResponse(
            hits=[_hit_message(hit) for hit in page.hits],
            next_page_token=SEARCH.encode(kind, terms, page.next_after),
        )

    async def UpdateLesson(
        self, request: content_pb2.UpdateLessonRequest, context: Context
    ) -> content_pb2.UpdateLessonResponse:
        viewer = _viewer(await self._caller(context))
        paths = domain.update_paths(list(request.update_mask.paths), domain.LESSON_FIELDS)
        changes = domain.lesson_changes(
            paths,
            topic=request.lesson.topic,
            content_type_=request.lesson.content_type,
            difficulty_=request.lesson.difficulty,
            body=request.lesson.body,
        )
        lesson = await self.lessons.update(viewer, request.lesson_id, changes)
        return content_pb2.UpdateLessonResponse(lesson=lesson_message(lesson))

    async def DeleteLesson(
        self, request: content_pb2.DeleteLessonRequest, context: Context
    ) -> content_pb2.DeleteLessonResponse:
        viewer = _viewer(await self._caller(context))
        await self.lessons.delete(viewer, request.lesson_id)
        return content_pb2.DeleteLessonResponse()

    async def DuplicateLesson(
        self, request: content_pb2.DuplicateLessonRequest, context: Context
    ) -> content_pb2.DuplicateLessonResponse:
        viewer = _viewer(await self._caller(context))
        lesson = await self.lessons.duplicate(viewer, request.lesson_id, request.idempotency_key)
        return content_pb2.DuplicateLessonResponse(lesson=lesson_message(lesson))

    async def UnpublishLesson(
        self, request: content_pb2.UnpublishLessonRequest, context: Context
    ) -> content_pb2.UnpublishLessonResponse:
        viewer = _viewer(await self._caller(context))
        lesson = await self.lessons.unpublish(viewer, request.lesson_id)
        return content_pb2.UnpublishLessonResponse(lesson=lesson_message(lesson))

    async def ListLessonCatalog(
        self, request: content_pb2.ListLessonCatalogRequest, context: Context
    ) -> content_pb2.ListLessonCatalogResponse:
        await self._caller(context)
        kind = domain.content_type_filter(request.content_type)
        level = domain.difficulty_filter(request.difficulty)
        size = paging.page_size(request.page_size)
        after = LESSON_CATALOG.decode(request.page_token)
        page = await self.lessons.catalog(
            content_type=kind, difficulty=level, after=after, limit=size
        )
        return content_pb2.ListLessonCatalogResponse(
            lessons=[lesson_message(lesson) for lesson in page.lessons],
            next_page_token=LESSON_CATALOG.encode(page.next_after),
        )


def _hit_message(hit: PostHit | LessonHit) -> content_pb2.SearchHit:
    if isinstance(hit, PostHit):
        return content_pb2.SearchHit(
            post=post_message(hit.view), snippet=hit.snippet, title_match=hit.title_match
        )
    return content_pb2.SearchHit(
        lesson=lesson_message(hit.lesson), snippet=hit.snippet, title_match=hit.title_match
    )


# ---- Avatars ----

# The services that may resolve avatars (AvatarService): auth, for UpdateMe.
AVATAR_CALLERS = ("auth",)


class AvatarApi(avatars_pb2_grpc.AvatarServiceServicer):
    """klik.content.v1.AvatarService: internal, the auth service's identity only."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self.avatars = Avatars(resources.uow)

    async def ResolveAvatar(
        self, request: avatars_pb2.ResolveAvatarRequest, context: Context
    ) -> avatars_pb2.ResolveAvatarResponse:
        await self.resources.callers.service(context, *AVATAR_CALLERS)
        asset = await self.avatars.resolve(request.user_id, request.asset_id)
        return avatars_pb2.ResolveAvatarResponse(
            url=asset.url, mime_type=asset.mime_type, kind=asset.kind
        )


def register(server: grpc.aio.Server, resources: Resources) -> Sequence[str]:
    content_pb2_grpc.add_ContentServiceServicer_to_server(ContentApi(resources), server)
    avatars_pb2_grpc.add_AvatarServiceServicer_to_server(AvatarApi(resources), server)
    return (
        content_pb2.DESCRIPTOR.services_by_name["ContentService"].full_name,
        avatars_pb2.DESCRIPTOR.services_by_name["AvatarService"].full_name,
    )
