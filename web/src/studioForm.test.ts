import { describe, expect, it } from "vitest";
import { ApiError } from "./api/errors";
import {
  createBody,
  EMPTY_FORM,
  estimateBody,
  holdLine,
  inputImages,
  isCancellable,
  isComplete,
  isPremiumRequired,
  modelChoices,
  parseChoice,
} from "./studioForm";

const providers = [
  {
    name: "sandbox",
    models: [
      { id: "sandbox-image", kinds: ["IMAGE"], display_name: "Sandbox image", is_default: true },
      { id: "sandbox-pro", kinds: ["IMAGE", "TEXT"], display_name: "Pro", premium: true },
    ],
  },
  { name: "heygen", models: [{ id: "avatar-v2", kinds: ["AVATAR_VIDEO"] }] },
];

describe("studio form", () => {
  it("lists the models of the kind, premium ones marked", () => {
    const image = modelChoices(providers, "IMAGE");
    expect(image.map((m) => m.value)).toEqual(["sandbox/sandbox-image", "sandbox/sandbox-pro"]);
    expect(image[0]!.label).toBe("sandbox · Sandbox image (default)");
    expect(image[1]).toMatchObject({ premium: true, label: "sandbox · Pro (premium)" });
    expect(modelChoices(providers, "AVATAR_VIDEO")[0]!.label).toBe("heygen · avatar-v2");
    expect(modelChoices(providers, "CHAT")).toEqual([]);
    expect(parseChoice("sandbox/sandbox-pro")).toEqual({ provider: "sandbox", model: "sandbox-pro" });
    expect(parseChoice("")).toEqual({ provider: "", model: "" });
  });

  it("builds the estimate body with only the kind's options", () => {
    expect(estimateBody({ ...EMPTY_FORM, kind: "TEXT", prompt: "hi", avatar: "a1" })).toEqual({ kind: "TEXT", prompt: "hi" });
    expect(estimateBody({ ...EMPTY_FORM, prompt: "cat", choice: "sandbox/sandbox-pro" })).toEqual({
      kind: "IMAGE",
      prompt: "cat",
      provider: "sandbox",
      model: "sandbox-pro",
    });
    expect(
      estimateBody({ ...EMPTY_FORM, kind: "AVATAR_VIDEO", prompt: "hello", voice: "v1", aspectRatio: "9:16", quality: "1080p" }),
    ).toEqual({
      kind: "AVATAR_VIDEO",
      prompt: "hello",
      options: { avatar_id: "", voice_id: "v1", aspect_ratio: "9:16", quality: "1080p" },
    });
  });

  it("starts an image or a video from one of the person's images", () => {
    const i2i = { ...EMPTY_FORM, prompt: "in blue", inputJobId: "job-1", initStrength: 0.3, motionStrength: 9 };
    expect(estimateBody(i2i).options).toEqual({ input_job_id: "job-1", input_index: 0, init_strength: 0.3 });
    const i2v = { ...i2i, kind: "IMAGE_TO_VIDEO" };
    expect(estimateBody(i2v).options).toEqual({ input_job_id: "job-1", input_index: 0, motion_strength: 9 });
    expect(isComplete(i2v)).toBe(true);
    expect(isComplete({ ...i2v, inputJobId: "" })).toBe(false); // the image is required there
    expect(isComplete({ ...i2v, prompt: "  " })).toBe(false);
    expect(createBody(i2v, "k1")).toEqual({ ...estimateBody(i2v), idempotency_key: "k1" });
  });

  it("offers only succeeded images as inputs", () => {
    const jobs = [
      { id: "a", kind: "IMAGE", status: "SUCCEEDED", result: { asset_url: "/a.png" } },
      { id: "b", kind: "IMAGE", status: "RUNNING" },
      { id: "c", kind: "TEXT", status: "SUCCEEDED", result: { text: "x" } },
      { id: "d", kind: "IMAGE", status: "FAILED" },
    ];
    expect(inputImages(jobs).map((j) => j.id)).toEqual(["a"]);
  });

  it("says the hold, which jobs can be cancelled, and a premium refusal", () => {
    expect(holdLine("12")).toBe("This will hold 12 credits");
    expect(holdLine("1")).toBe("This will hold 1 credit");
    expect(isCancellable({ status: "QUEUED" })).toBe(true);
    expect(isCancellable({ status: "RUNNING" })).toBe(true);
    expect(isCancellable({ status: "SUCCEEDED" })).toBe(false);
    expect(isPremiumRequired(new ApiError(403, "PREMIUM_REQUIRED", "PERMISSION_DENIED", "premium only"))).toBe(true);
    expect(isPremiumRequired(new ApiError(403, "PERMISSION_DENIED", "PERMISSION_DENIED", ""))).toBe(false);
  });
});
