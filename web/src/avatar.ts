// The profile picture on the Account page, without React. An avatar is one of your
// own images: a generated picture (asset kind IMAGE) or an upload (kind UPLOAD),
// set with PATCH /v1/auth/me {"avatar_asset_id": id}; auth asks content for the
// image's URL (User.avatar_url) and refuses anything else (ASSET_NOT_FOUND,
// AVATAR_NOT_IMAGE). {"avatar_asset_id": ""} removes it: the key is in the body, so
// the gateway names it in the update mask.
import type { Asset, User } from "./api/client";

/** The asset kinds an avatar may be (GET /v1/assets?kind=…). */
export const AVATAR_KINDS = ["IMAGE", "UPLOAD"] as const;

/** Whether the asset can be a profile picture: an image of kind IMAGE or UPLOAD with a URL. */
export function isAvatarCandidate(asset: Asset): boolean {
  return (
    (AVATAR_KINDS as readonly string[]).includes(asset.kind ?? "") &&
    Boolean(asset.id && asset.url) &&
    (asset.mime_type ?? "").startsWith("image/")
  );
}

/** The pictures to choose from, from the lists of each kind: images only, newest first, each once. */
export function avatarChoices(...lists: readonly (readonly Asset[])[]): Asset[] {
  const seen = new Set<string>();
  const choices: Asset[] = [];
  for (const asset of lists.flat()) {
    if (!isAvatarCandidate(asset) || seen.has(asset.id!)) continue;
    seen.add(asset.id!);
    choices.push(asset);
  }
  // RFC 3339 UTC timestamps of one format compare as strings.
  return choices.sort((a, b) => (b.created_at ?? "").localeCompare(a.created_at ?? ""));
}

/** The PATCH /v1/auth/me body that sets the picture to `assetId`, or removes it with "". */
export function avatarUpdate(assetId: string): { avatar_asset_id: string } {
  return { avatar_asset_id: assetId };
}

/** The asset id of the user's current picture ("" for none). */
export function currentAvatar(user: Pick<User, "avatar_asset_id" | "avatar_url"> | null | undefined): string {
  return user?.avatar_url ? (user.avatar_asset_id ?? "") : "";
}

/** What to show without a picture: up to two initials of the name (or the email). */
export function initials(user: Pick<User, "display_name" | "email"> | null | undefined): string {
  const words = (user?.display_name || user?.email?.split("@")[0] || "").split(/[\s._-]+/).filter(Boolean);
  return words
    .slice(0, 2)
    .map((w) => Array.from(w)[0]!.toUpperCase())
    .join("");
}

/** What the page says once a change went through. */
export function avatarDone(assetId: string): string {
  return assetId ? "Your profile picture is set." : "Your profile picture is removed.";
}
