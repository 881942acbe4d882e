import type { Asset } from "../api/client";
import { ErrorText, Page, useLoad } from "../components";
import { formatStatus, formatTime } from "../format";
import { useSession } from "../session";

export function AssetView({ asset, alt }: { asset: Asset; alt?: string }) {
  if (asset.url && asset.mime_type?.startsWith("image/")) {
    return <img className="result" src={asset.url} alt={alt ?? `Generated ${asset.kind?.toLowerCase() ?? "image"}`} />;
  }
  if (asset.url && asset.mime_type?.startsWith("video/")) {
    return <video className="result" src={asset.url} controls aria-label={alt ?? "Generated video"} />;
  }
  return <p className="text-result">{asset.text}</p>;
}

export function AssetsPage() {
  const { api } = useSession();
  const assets = useLoad(() => api.call((c) => c.GET("/v1/assets", { params: { query: { page_size: 50 } } })), []);
  return (
    <Page title="Assets">
      <ErrorText error={assets.error} />
      {assets.data && !assets.data.assets?.length ? <p>No assets yet: what you generate lands here.</p> : null}
      <ul className="grid">
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
