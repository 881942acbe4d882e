// Keeping a list of jobs current from job events.
import type { Job, Price } from "./api/client";

const ORDER = ["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"];

/** `jobs` with `job` put in (newest first); an older state never replaces a newer one. */
export function upsertJob(jobs: Job[], job: Job): Job[] {
  const at = jobs.findIndex((j) => j.id === job.id);
  if (at < 0) return [job, ...jobs];
  const old = jobs[at]!;
  if (ORDER.indexOf(job.status ?? "") < ORDER.indexOf(old.status ?? "")) return jobs;
  return jobs.map((j, i) => (i === at ? { ...old, ...job } : j));
}

export function isFinished(job: Job): boolean {
  return ["SUCCEEDED", "FAILED", "CANCELLED"].includes(job.status ?? "");
}

/** The price of `kind` (and `model`, else the kind's default), in words. */
export function priceFor(prices: Price[], kind: string, model = ""): string {
  const price =
    prices.find((p) => p.kind === kind && p.model === model) ?? prices.find((p) => p.kind === kind && !p.model);
  if (!price) return "";
  const per = `${price.credits_per_unit} ${price.credits_per_unit === "1" ? "credit" : "credits"} per ${price.unit}`;
  return price.minimum_credits && price.minimum_credits !== price.credits_per_unit
    ? `${per}, at least ${price.minimum_credits}`
    : per;
}
