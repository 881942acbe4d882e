import { useState } from "react";
import type { Asset } from "../api/client";
import { ErrorText, Field, Page, useLoad } from "../components";
import { formatStatus, formatTime } from "../format";
import { useSession } from "../session";

export function AssetView({ asset, alt }: { asset: Asset; alt?: string }) {
  if (asset.url && asset.mime_type?.startsWith("image/")) {
    const fallback = asset.kind === "UPLOAD" ? "Uploaded image" : `Generated ${asset.kind?.toLowerCase() ?? "image"}`;
    return <img className="result" src={asset.url} alt={alt ?? fallback} />;
  }
  if (asset.url && asset.mime_type?.startsWith("video/")) {
    return <video className="result" src={asset.url} controls aria-label={alt ?? "Generated video"} />;
  }
  return <p className="text-result">{asset.text}</p>;
}

// The kinds GET /v1/assets filters by ("" for all); UPLOAD is what you uploaded.
const KINDS: [string, string][] = [
  ["", "All"],
  ["UPLOAD", "Uploads"],
  ["IMAGE", "Images"],
  ["IMAGE_TO_VIDEO", "Animated images"],
  ["AVATAR_VIDEO", "Avatar videos"],
  ["TEXT", "Texts"],
  ["CHAT", "Chat replies"],
];

export function AssetsPage() {
  const { api } = useSession();
  const [kind, setKind] = useState("");
  const assets = useLoad(
    () => api.call((c) => c.GET("/v1/assets", { params: { query: { page_size: 50, kind } } })),
    [kind],
  );
  const label = KINDS.find(([k]) => k === kind)?.[1] ?? "All";
  return (
    <Page title="Assets">
      <div className="row">
        <Field label="Show">
          {(id) => (
            <select id={id} value={kind} onChange={(e) => setKind(e.target.value)}>
              {KINDS.map(([k, name]) => (
                <option key={k} value={k}>
                  {name}
                </option>
              ))}
            </select>
          )}
        </Field>
      </div>
      <ErrorText error={assets.error} />
      {assets.data && !assets.data.assets?.length ? (
        <p>
          {kind === ""
            ? "No assets yet: what you generate or upload lands here."
            : kind === "UPLOAD"
              ? "No uploads yet: upload an image in the post composer (My posts)."
              : `No ${label.toLowerCase()} yet.`}
        </p>
      ) : null}
      <ul className="grid" aria-label={`${label} assets`}>
        {(assets.data?.assets ?? []).map((a) => (
          <li key={a.id} className="card">
            <AssetView asset={a} />
            <p>
              {formatStatus(a.kind)} · <time dateTime={a.created_at}>{formatTime(a.created_at)}</time>
            </p>
          </li>
        ))}
      </ul>
    </Page>
  );
}
