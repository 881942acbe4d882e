import { type FormEvent, useState } from "react";
import type { Post } from "../api/client";
import { ErrorText, Field, ImageUploadField, newKey, Page, useAction, useLoad } from "../components";
import { formatStatus } from "../format";
import { Link } from "../router";
import { useSession } from "../session";
import { uploadFile } from "../uploads";
import { AssetView } from "./Assets";

export function PostsPage() {
  const { api } = useSession();
  const assets = useLoad(() => api.call((c) => c.GET("/v1/assets", { params: { query: { page_size: 50 } } })), []);
  const [title, setTitle] = useState("");
  const [body, setBody] = useState("");
  const [chosen, setChosen] = useState<string[]>([]);
  const [drafts, setDrafts] = useState<Post[]>([]);
  const replace = (post: Post) => setDrafts((now) => now.map((p) => (p.id === post.id ? post : p)));

  const create = useAction(async () => {
    const post = await api.call((c) =>
      c.POST("/v1/posts", { body: { title, body, asset_ids: chosen, visibility: "public" } }),
    );
    setDrafts((now) => [post, ...now]);
    setTitle("");
    setBody("");
    setChosen([]);
  });
  const publish = useAction(async (id: string) => {
    replace(await api.call((c) => c.POST("/v1/posts/{post_id}:publish", { params: { path: { post_id: id } }, body: {} })));
  });
  // An image from the device becomes an asset (kind UPLOAD) and is attached at once.
  const upload = useAction(async (file: File) => {
    const asset = await uploadFile(api, file, newKey());
    assets.setData((now) => ({ ...now, assets: [asset, ...(now?.assets ?? [])] }));
    setChosen((now) => [...now, asset.id!]);
  });
  const toggle = (id: string) => setChosen((now) => (now.includes(id) ? now.filter((x) => x !== id) : [...now, id]));
  const media = (assets.data?.assets ?? []).filter((a) => a.url);

  return (
    <Page title="My posts">
      <form
        className="card"
        onSubmit={(e: FormEvent) => {
          e.preventDefault();
          void create.run();
        }}
      >
        <Field label="Title">{(id) => <input id={id} required value={title} onChange={(e) => setTitle(e.target.value)} />}</Field>
        <Field label="Text">{(id) => <textarea id={id} rows={3} value={body} onChange={(e) => setBody(e.target.value)} />}</Field>
        <fieldset>
          <legend>Attach an image or your generated media</legend>
          <ImageUploadField
            label="Upload an image"
            hint="PNG, JPEG, WebP or GIF, up to 10 MiB; it is attached to this post."
            busy={upload.busy}
            upload={upload.run}
          />
          <ErrorText error={upload.error} />
          <ErrorText error={assets.error} />
          {media.length === 0 ? <p>No images or videos yet — upload one, or make some in the Studio.</p> : null}
          <ul className="grid small">
            {media.map((a) => (
              <li key={a.id}>
                <label className="pick">
                  <input type="checkbox" checked={chosen.includes(a.id!)} onChange={() => toggle(a.id!)} />
                  <AssetView asset={a} alt={`Asset ${a.id}`} />
                  <span className="sr-only">Attach asset {a.id}</span>
                </label>
              </li>
            ))}
          </ul>
        </fieldset>
        <ErrorText error={create.error} />
        <button type="submit" disabled={create.busy || upload.busy}>
          Save draft
        </button>
      </form>
      <h2>Drafts and posts from this visit</h2>
      <ErrorText error={publish.error} />
      <ul className="list">
        {drafts.map((p) => (
          <li key={p.id} className="card" data-status={p.status}>
            <strong>{p.title}</strong> · <span className="status">{formatStatus(p.status)}</span>
            {p.status === "draft" ? (
              <button type="button" onClick={() => void publish.run(p.id!)} disabled={publish.busy}>
                Publish “{p.title}”
              </button>
            ) : (
              <Link to="/feed"> See it in the feed</Link>
            )}
          </li>
        ))}
      </ul>
    </Page>
  );
}
