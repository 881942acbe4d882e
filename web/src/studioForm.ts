// The studio's form: what the person chose, and the create/estimate body it makes.
// Pure (no React, no I/O), so it is unit-tested (studioForm.test.ts).
import type { CreateJob, Job, Provider, Schemas } from "./api/client";
import { ApiError } from "./api/errors";

export type EstimateJob = Schemas["klik.generation.v1.EstimateJobRequest"];

export const KINDS = [
  { value: "IMAGE", label: "Image" },
  { value: "TEXT", label: "Text" },
  { value: "AVATAR_VIDEO", label: "Talking-avatar video" },
  { value: "IMAGE_TO_VIDEO", label: "Video from one of your images" },
];
export const ASPECT_RATIOS = [
  { value: "16:9", label: "16:9 (landscape)" },
  { value: "9:16", label: "9:16 (vertical, for phones)" },
  { value: "1:1", label: "1:1 (square)" },
];
export const QUALITIES = [
  { value: "720p", label: "720p" },
  { value: "1080p", label: "1080p (twice the price)" },
];

export interface StudioForm {
  kind: string;
  prompt: string;
  /** The model chosen, as `choiceValue` makes it; "" for the default. */
  choice: string;
  avatar: string;
  voice: string;
  aspectRatio: string;
  quality: string;
  /** IMAGE (optional), IMAGE_TO_VIDEO (required): one of the person's SUCCEEDED IMAGE jobs. */
  inputJobId: string;
  /** IMAGE with an input: 0.1..0.9. */
  initStrength: number;
  /** IMAGE_TO_VIDEO: 1..10. */
  motionStrength: number;
}

export const EMPTY_FORM: StudioForm = {
  kind: "IMAGE",
  prompt: "",
  choice: "",
  avatar: "",
  voice: "",
  aspectRatio: "16:9",
  quality: "720p",
  inputJobId: "",
  initStrength: 0.5,
  motionStrength: 5,
};

export interface ModelChoice {
  value: string;
  provider: string;
  model: string;
  label: string;
  premium: boolean;
}

export function choiceValue(provider: string, model: string): string {
  return provider || model ? `${provider}/${model}` : "";
}

/** The provider and model of a choice ("" and "" for the default). */
export function parseChoice(value: string): { provider: string; model: string } {
  const at = value.indexOf("/");
  return at < 0 ? { provider: "", model: "" } : { provider: value.slice(0, at), model: value.slice(at + 1) };
}

/** Every model of every provider that serves `kind`, premium-only ones marked. */
export function modelChoices(providers: Provider[], kind: string): ModelChoice[] {
  return providers.flatMap((p) =>
    (p.models ?? [])
      .filter((m) => (m.kinds ?? []).includes(kind) && m.id)
      .map((m) => {
        const name = m.display_name || m.id!;
        const marks = [m.is_default ? "default" : "", m.premium ? "premium" : ""].filter(Boolean);
        return {
          value: choiceValue(p.name ?? "", m.id!),
          provider: p.name ?? "",
          model: m.id!,
          label: `${p.name} · ${name}${marks.length ? ` (${marks.join(", ")})` : ""}`,
          premium: Boolean(m.premium),
        };
      }),
  );
}

/** The person's images a job can start from: their SUCCEEDED IMAGE jobs with an image. */
export function inputImages(jobs: Job[]): Job[] {
  return jobs.filter((j) => j.kind === "IMAGE" && j.status === "SUCCEEDED" && j.id && j.result?.asset_url);
}

/** Whether the form is complete enough to price or create. */
export function isComplete(form: StudioForm): boolean {
  if (!form.prompt.trim()) return false;
  return form.kind !== "IMAGE_TO_VIDEO" || form.inputJobId !== "";
}

/** The body of `POST /v1/generations:estimate` (and, with a key, of the create). */
export function estimateBody(form: StudioForm): EstimateJob {
  const { provider, model } = parseChoice(form.choice);
  const body: EstimateJob = { kind: form.kind, prompt: form.prompt };
  if (provider) body.provider = provider;
  if (model) body.model = model;
  // Options that do not apply to the kind must be left unset.
  if (form.kind === "AVATAR_VIDEO") {
    body.options = {
      avatar_id: form.avatar,
      voice_id: form.voice,
      aspect_ratio: form.aspectRatio,
      quality: form.quality,
    };
  } else if (form.kind === "IMAGE" && form.inputJobId) {
    body.options = { input_job_id: form.inputJobId, input_index: 0, init_strength: form.initStrength };
  } else if (form.kind === "IMAGE_TO_VIDEO") {
    body.options = { input_job_id: form.inputJobId, input_index: 0, motion_strength: form.motionStrength };
  }
  return body;
}

export function createBody(form: StudioForm, idempotencyKey: string): CreateJob {
  return { ...estimateBody(form), idempotency_key: idempotencyKey };
}

/** "This will hold 12 credits". */
export function holdLine(credits: string | undefined): string {
  const n = credits ?? "0";
  return `This will hold ${n} ${n === "1" ? "credit" : "credits"}`;
}

export function isCancellable(job: Job): boolean {
  return job.status === "QUEUED" || job.status === "RUNNING";
}

export function isPremiumRequired(error: unknown): boolean {
  return error instanceof ApiError && error.code === "PREMIUM_REQUIRED";
}
