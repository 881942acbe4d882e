import { type FormEvent, useState } from "react";
import type { Post } from "../api/client";
import { ErrorText, Field, Page, useAction, useLoad } from "../components";
import { formatTime } from "../format";
import { useSession } from "../session";
import { AssetView } from "./Assets";

/** A post's attached media: they come with the post (`Post.assets`) to whoever may see it. */
export function PostMedia({ post }: { post: Post }) {
  const assets = post.assets ?? [];
  const gone = (post.asset_ids?.length ?? 0) - assets.length;
  return (
    <>
      {assets.map((a) => (
        <AssetView key={a.id} asset={a} alt={`Image in “${post.title}”`} />
      ))}
      {gone > 0 ? <p className="hint">{gone === 1 ? "1 attached item is" : `${gone} attached items are`} no longer available</p> : null}
    </>
  );
}

/** A post's comments, loaded when opened, and a form to add one. */
function Comments({ post }: { post: Post }) {
  const { api } = useSession();
  const [open, setOpen] = useState(false);
  const [body, setBody] = useState("");
  const postId = post.id ?? "";
  const comments = useLoad(
    () =>
      open
        ? api.call((c) => c.GET("/v1/posts/{post_id}/comments", { params: { path: { post_id: postId } } }))
        : Promise.resolve(null),
    [postId, open],
  );
  const add = useAction(async () => {
    await api.call((c) =>
      c.POST("/v1/posts/{post_id}/comments", { params: { path: { post_id: postId } }, body: { body } }),
    );
    setBody("");
    comments.reload();
  });
  const list = comments.data?.comments ?? [];
  const count = comments.data ? list.length : Number(post.comment_count ?? 0);
  return (
    <details onToggle={(e) => setOpen(e.currentTarget.open)}>
      <summary>
        Comments ({count})
      </summary>
      <ErrorText error={comments.error} />
      <ul className="list comments">
        {list.map((c) => (
          <li key={c.id}>
            <strong>{c.author?.display_name || c.author?.handle || "Someone"}</strong>: {c.body}{" "}
            <time dateTime={c.created_at}>{formatTime(c.created_at)}</time>
          </li>
        ))}
      </ul>
      <form
        onSubmit={(e: FormEvent) => {
          e.preventDefault();
          void add.run();
        }}
      >
        <Field label={`Comment on “${post.title}”`}>
          {(id) => <textarea id={id} rows={2} required value={body} onChange={(e) => setBody(e.target.value)} />}
        </Field>
        <ErrorText error={add.error} />
        <button type="submit" disabled={add.busy || !body.trim()}>
          Post comment
        </button>
      </form>
    </details>
  );
}

export function FeedPage() {
  const { api } = useSession();
  const feed = useLoad(() => api.call((c) => c.GET("/v1/posts", { params: { query: { page_size: 20 } } })), []);
  return (
    <Page title="Feed">
      <button type="button" onClick={feed.reload}>
        Refresh
      </button>
      <ErrorText error={feed.error} />
      {feed.data && !feed.data.posts?.length ? <p>No posts yet.</p> : null}
      <ol className="feed">
        {(feed.data?.posts ?? []).map((post) => (
          <li key={post.id}>
            <article className="card post" aria-labelledby={`post-${post.id}`}>
              <h2 id={`post-${post.id}`}>{post.title}</h2>
              <PostMedia post={post} />
              {post.body ? <p>{post.body}</p> : null}
              <p className="hint">
                {post.author?.display_name ? `${post.author.display_name} · ` : ""}
                <time dateTime={post.updated_at}>{formatTime(post.updated_at)}</time>
              </p>
              <Comments post={post} />
            </article>
          </li>
        ))}
      </ol>
    </Page>
  );
}
