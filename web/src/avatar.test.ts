import { describe, expect, it } from "vitest";
import type { Asset } from "./api/client";
import { avatarChoices, avatarDone, avatarUpdate, currentAvatar, initials, isAvatarCandidate } from "./avatar";

const image = (id: string, created_at: string, extra: Partial<Asset> = {}): Asset => ({
  id,
  kind: "IMAGE",
  url: `/v1/files/${id}.png`,
  mime_type: "image/png",
  created_at,
  ...extra,
});

describe("avatar choices", () => {
  it("are images of kind IMAGE or UPLOAD with a URL", () => {
    expect(isAvatarCandidate(image("a", "2026-01-01T00:00:00Z"))).toBe(true);
    expect(isAvatarCandidate(image("b", "2026-01-01T00:00:00Z", { kind: "UPLOAD", mime_type: "image/webp" }))).toBe(true);
    expect(isAvatarCandidate(image("c", "2026-01-01T00:00:00Z", { kind: "AVATAR_VIDEO", mime_type: "video/mp4" }))).toBe(false);
    expect(isAvatarCandidate(image("d", "2026-01-01T00:00:00Z", { kind: "TEXT", url: "", mime_type: "text/plain" }))).toBe(false);
    expect(isAvatarCandidate(image("e", "2026-01-01T00:00:00Z", { url: "" }))).toBe(false);
    expect(isAvatarCandidate(image("f", "2026-01-01T00:00:00Z", { kind: "UPLOAD", mime_type: "application/pdf" }))).toBe(false);
  });
  it("merge the lists newest first, each once", () => {
    const generated = [image("g2", "2026-03-02T10:00:00Z"), image("g1", "2026-03-01T10:00:00Z")];
    const uploads = [
      image("u1", "2026-03-01T12:00:00Z", { kind: "UPLOAD" }),
      image("g2", "2026-03-02T10:00:00Z"), // listed twice: shown once
      image("v", "2026-03-03T00:00:00Z", { kind: "IMAGE_TO_VIDEO", mime_type: "video/mp4" }),
    ];
    expect(avatarChoices(generated, uploads).map((a) => a.id)).toEqual(["g2", "u1", "g1"]);
    expect(avatarChoices()).toEqual([]);
  });
});

describe("the profile update", () => {
  it("names the asset, or removes the picture with an empty id", () => {
    expect(avatarUpdate("a1")).toEqual({ avatar_asset_id: "a1" });
    expect(avatarUpdate("")).toEqual({ avatar_asset_id: "" });
    expect([avatarDone("a1"), avatarDone("")]).toEqual(["Your profile picture is set.", "Your profile picture is removed."]);
  });
  it("knows the current picture only while it has a URL", () => {
    expect(currentAvatar({ avatar_asset_id: "a1", avatar_url: "/v1/files/a1.png" })).toBe("a1");
    expect(currentAvatar({ avatar_asset_id: "", avatar_url: "" })).toBe("");
    expect(currentAvatar({ avatar_asset_id: "stale" })).toBe("");
    expect(currentAvatar(null)).toBe("");
  });
  it("falls back to initials", () => {
    expect(initials({ display_name: "Ada Lovelace", email: "ada@example.com" })).toBe("AL");
    expect(initials({ display_name: "", email: "grace.hopper@example.com" })).toBe("GH");
    expect(initials({ display_name: "émile", email: "e@example.com" })).toBe("É");
    expect(initials(null)).toBe("");
  });
});
