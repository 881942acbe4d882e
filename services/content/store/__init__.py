"""The content service's own database: `tables` defines the tables; one module per
aggregate holds its queries (`posts`, `assets`, `chats` with their messages,
`lessons`, `job_links`, `social` for profiles, comments and likes, and `users`
for what `user.deleted` removes); `pending` is
the one helper for rows stored before their generation job is known. Callers use
the names re-exported here (`store.add_post(session, ...)`).

Soft deletes: posts, chats and lessons carry `deleted_at`; every read here leaves
deleted rows out, so a deleted row is NOT_FOUND everywhere.
"""

from services.content.store.assets import add_asset, get_asset, list_assets, owned_assets
from services.content.store.chats import (
    PendingMessage,
    add_chat,
    add_reply,
    add_user_message,
    chat_messages,
    confirm_message,
    forget_message,
    get_chat,
    get_user_message,
    list_chats,
    message_by_key,
    next_turn,
    touch_chat,
)
from services.content.store.job_links import JobLink, link_outcome, link_target, mark_applied
from services.content.store.lessons import (
    StoredLesson,
    add_lesson,
    confirm_lesson,
    finish_lesson,
    forget_lesson,
    get_lesson,
    lesson_by_key,
    list_lessons,
    save_lesson,
)
from services.content.store.posts import add_post, delete_post, get_post, list_feed, save_post
from services.content.store.social import (
    add_comment,
    add_like,
    change_profile,
    delete_comment,
    delete_user_social,
    edit_comment,
    get_comment,
    like_count,
    liked,
    list_comments,
    profiles_of,
    register_profile,
    remove_like,
)
from services.content.store.tables import metadata
from services.content.store.users import delete_user_content

__all__ = [
    "JobLink",
    "PendingMessage",
    "StoredLesson",
    "add_asset",
    "add_chat",
    "add_comment",
    "add_lesson",
    "add_like",
    "add_post",
    "add_reply",
    "add_user_message",
    "change_profile",
    "chat_messages",
    "confirm_lesson",
    "confirm_message",
    "delete_comment",
    "delete_post",
    "delete_user_content",
    "delete_user_social",
    "edit_comment",
    "finish_lesson",
    "forget_lesson",
    "forget_message",
    "get_asset",
    "get_chat",
    "get_comment",
    "get_lesson",
    "get_post",
    "get_user_message",
    "lesson_by_key",
    "like_count",
    "liked",
    "link_outcome",
    "link_target",
    "list_assets",
    "list_chats",
    "list_comments",
    "list_feed",
    "list_lessons",
    "mark_applied",
    "message_by_key",
    "metadata",
    "next_turn",
    "owned_assets",
    "profiles_of",
    "register_profile",
    "remove_like",
    "save_lesson",
    "save_post",
    "touch_chat",
]
