import type { Post } from "../api/client";
import { ErrorText, Page, useLoad } from "../components";
import { formatTime } from "../format";
import { useSession } from "../session";
import { AssetView } from "./Assets";

function PostMedia({ post }: { post: Post }) {
  const { api, user } = useSession();
  const own = post.author_id === user?.id;
  const assets = useLoad(
    () =>
      own
        ? Promise.all(
            (post.asset_ids ?? []).map((id) =>
              api.call((c) => c.GET("/v1/assets/{asset_id}", { params: { path: { asset_id: id } } })),
            ),
          )
        : Promise.resolve([]),
    [post.id, own],
  );
  if (!own && post.asset_ids?.length) return <p className="hint">{post.asset_ids.length} attached media</p>;
  return (
    <>
      <ErrorText error={assets.error} />
      {(assets.data ?? []).map((a) => (
        <AssetView key={a.id} asset={a} alt={`Image in “${post.title}”`} />
      ))}
    </>
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
                <time dateTime={post.updated_at}>{formatTime(post.updated_at)}</time>
              </p>
            </article>
          </li>
        ))}
      </ol>
    </Page>
  );
}
