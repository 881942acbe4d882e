import { type FormEvent, useEffect, useMemo, useRef, useState } from "react";
import type { Job } from "../api/client";
import { type JobStreamState, watchJob } from "../api/jobStream";
import { describeError } from "../api/errors";
import { ErrorText, Field, newKey, Page, useAction, useLoad } from "../components";
import { formatCredits, formatStatus, formatTime } from "../format";
import { isFinished, priceFor, upsertJob } from "../jobs";
import { Link } from "../router";
import { useSession } from "../session";
import {
  ASPECT_RATIOS,
  createBody,
  EMPTY_FORM,
  estimateBody,
  holdLine,
  inputImages,
  isCancellable,
  isComplete,
  isPremiumRequired,
  KINDS,
  modelChoices,
  parseChoice,
  QUALITIES,
  type StudioForm,
} from "../studioForm";

export function JobResult({ job }: { job: Job }) {
  const result = job.result;
  if (job.status === "FAILED") return <p className="error">{job.error?.message || "The generation failed."}</p>;
  if (!result || job.status !== "SUCCEEDED") return null;
  if (result.asset_url && result.mime_type?.startsWith("image/")) {
    return <img className="result" src={result.asset_url} alt={`Generated image: ${job.prompt}`} />;
  }
  if (result.asset_url && result.mime_type?.startsWith("video/")) {
    return <video className="result" src={result.asset_url} controls aria-label={`Generated video: ${job.prompt}`} />;
  }
  return <p className="text-result">{result.text}</p>;
}

export function StudioPage() {
  const { api, onEvent } = useSession();
  const [form, setForm] = useState<StudioForm>(EMPTY_FORM);
  const set = (change: Partial<StudioForm>) => setForm((now) => ({ ...now, ...change }));
  const { kind, prompt } = form;
  const [jobs, setJobs] = useState<Job[]>([]);
  const pricing = useLoad(() => api.call((c) => c.GET("/v1/pricing")), []);
  const providers = useLoad(() => api.call((c) => c.GET("/v1/providers")), []);
  const list = useLoad(() => api.call((c) => c.GET("/v1/generations", { params: { query: { page_size: 20 } } })), []);

  useEffect(() => {
    if (list.data?.jobs) setJobs((now) => list.data!.jobs!.reduceRight(upsertJob, now));
  }, [list.data]);
  useEffect(() => onEvent((event) => event.kind === "job" && setJobs((now) => upsertJob(now, event.job))), [onEvent]);
  // TEXT jobs stream their text as it is written (`:watch`), each followed once.
  const [live, setLive] = useState<Record<string, JobStreamState>>({});
  const watching = useRef(new Map<string, AbortController>());
  useEffect(() => {
    for (const job of jobs) {
      const id = job.id;
      if (!id || job.kind !== "TEXT" || isFinished(job) || watching.current.has(id)) continue;
      const controller = new AbortController();
      watching.current.set(id, controller);
      watchJob(api, id, { signal: controller.signal, onUpdate: (state) => setLive((now) => ({ ...now, [id]: state })) }).then(
        (final) => final.job && setJobs((now) => upsertJob(now, final.job!)),
        () => {}, // the job events and the catch-up below still bring its end
      );
    }
  }, [api, jobs]);
  useEffect(() => {
    const open = watching.current;
    return () => open.forEach((controller) => controller.abort());
  }, []);
  // Catch up on jobs still running (an event may have come before the job was listed).
  useEffect(() => {
    const open = jobs.filter((j) => !isFinished(j));
    if (!open.length) return;
    const timer = setTimeout(() => {
      for (const j of open) {
        api.call((c) => c.GET("/v1/generations/{job_id}", { params: { path: { job_id: j.id! } } })).then(
          (fresh) => setJobs((now) => upsertJob(now, fresh)),
          () => {},
        );
      }
    }, 3000);
    return () => clearTimeout(timer);
  }, [api, jobs]);

  const avatars = (providers.data?.providers ?? []).flatMap((p) => p.avatars ?? []);
  const voices = (providers.data?.providers ?? []).flatMap((p) => p.voices ?? []);
  const choices = modelChoices(providers.data?.providers ?? [], kind);
  const images = inputImages(jobs);
  const complete = isComplete(form);

  // The price before paying: the hold CreateJob would place, asked for as the form settles.
  const estimateKey = useMemo(() => (complete ? JSON.stringify(estimateBody(form)) : ""), [complete, form]);
  const [estimate, setEstimate] = useState<{ key: string; credits?: string; error?: unknown } | null>(null);
  useEffect(() => {
    if (!estimateKey) return;
    let current = true;
    const timer = setTimeout(() => {
      api
        .call((c) => c.POST("/v1/generations:estimate", { body: JSON.parse(estimateKey) as ReturnType<typeof estimateBody> }))
        .then(
          (answer) => current && setEstimate({ key: estimateKey, credits: answer.estimate_credits ?? "0" }),
          (error: unknown) => current && setEstimate({ key: estimateKey, error }),
        );
    }, 300);
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [api, estimateKey]);
  const shownEstimate = estimate && estimate.key === estimateKey ? estimate : null;

  const create = useAction(async () => {
    const job = await api.call((c) => c.POST("/v1/generations", { body: createBody(form, newKey()) }));
    setJobs((now) => upsertJob(now, job));
    set({ prompt: "" });
  });
  const cancel = useAction(async (job: Job) => {
    const cancelled = await api.call((c) =>
      c.POST("/v1/generations/{job_id}:cancel", { params: { path: { job_id: job.id! } }, body: {} }),
    );
    setJobs((now) => upsertJob(now, cancelled));
  });
  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    void create.run();
  };
  const price = priceFor(pricing.data?.prices ?? [], kind, parseChoice(form.choice).model);
  const premiumError = [create.error, shownEstimate?.error].find(isPremiumRequired);

  return (
    <Page title="Studio">
      <form className="card" onSubmit={onSubmit}>
        <Field label="What to make">
          {(id) => (
            <select
              id={id}
              value={kind}
              onChange={(e) => set({ kind: e.target.value, choice: "", inputJobId: e.target.value === form.kind ? form.inputJobId : "" })}
            >
              {KINDS.map((k) => (
                <option key={k.value} value={k.value}>
                  {k.label}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Model">
          {(id) => (
            <select id={id} value={form.choice} onChange={(e) => set({ choice: e.target.value })}>
              <option value="">Default model</option>
              {choices.map((m) => (
                <option key={m.value} value={m.value}>
                  {m.label}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label={kind === "IMAGE_TO_VIDEO" ? "How it should move" : "Prompt"}>
          {(id) => <textarea id={id} required rows={3} value={prompt} onChange={(e) => set({ prompt: e.target.value })} />}
        </Field>
        {kind === "IMAGE" || kind === "IMAGE_TO_VIDEO" ? (
          <div className="row">
            <Field
              label={kind === "IMAGE" ? "Start from one of your images (optional)" : "Image to animate"}
              hint={images.length ? undefined : "Generate an image first: your finished images are listed here."}
            >
              {(id) => (
                <select
                  id={id}
                  value={form.inputJobId}
                  required={kind === "IMAGE_TO_VIDEO"}
                  onChange={(e) => set({ inputJobId: e.target.value })}
                >
                  <option value="">{kind === "IMAGE" ? "None: a new image" : "Choose an image"}</option>
                  {images.map((j) => (
                    <option key={j.id} value={j.id}>
                      {j.prompt || j.id} · {formatTime(j.created_at)}
                    </option>
                  ))}
                </select>
              )}
            </Field>
            {kind === "IMAGE" && form.inputJobId ? (
              <Field label="How much of it shows through" hint={`${form.initStrength.toFixed(1)} (0.1 to 0.9)`}>
                {(id) => (
                  <input
                    id={id}
                    type="range"
                    min={0.1}
                    max={0.9}
                    step={0.1}
                    value={form.initStrength}
                    onChange={(e) => set({ initStrength: Number(e.target.value) })}
                  />
                )}
              </Field>
            ) : null}
            {kind === "IMAGE_TO_VIDEO" ? (
              <Field label="Motion strength" hint={`${form.motionStrength} (1 to 10)`}>
                {(id) => (
                  <input
                    id={id}
                    type="range"
                    min={1}
                    max={10}
                    step={1}
                    value={form.motionStrength}
                    onChange={(e) => set({ motionStrength: Number(e.target.value) })}
                  />
                )}
              </Field>
            ) : null}
          </div>
        ) : null}
        {kind === "AVATAR_VIDEO" ? (
          <div className="row">
            <Field label="Avatar">
              {(id) => (
                <select id={id} value={form.avatar} onChange={(e) => set({ avatar: e.target.value })}>
                  <option value="">Provider's default</option>
                  {avatars.map((a) => (
                    <option key={a.id} value={a.id}>
                      {a.name || a.id}
                    </option>
                  ))}
                </select>
              )}
            </Field>
            <Field label="Voice">
              {(id) => (
                <select id={id} value={form.voice} onChange={(e) => set({ voice: e.target.value })}>
                  <option value="">Provider's default</option>
                  {voices.map((v) => (
                    <option key={v.id} value={v.id}>
                      {v.name || v.id}
                    </option>
                  ))}
                </select>
              )}
            </Field>
            <Field label="Aspect ratio">
              {(id) => (
                <select id={id} value={form.aspectRatio} onChange={(e) => set({ aspectRatio: e.target.value })}>
                  {ASPECT_RATIOS.map((a) => (
                    <option key={a.value} value={a.value}>
                      {a.label}
                    </option>
                  ))}
                </select>
              )}
            </Field>
            <Field label="Quality">
              {(id) => (
                <select id={id} value={form.quality} onChange={(e) => set({ quality: e.target.value })}>
                  {QUALITIES.map((q) => (
                    <option key={q.value} value={q.value}>
                      {q.label}
                    </option>
                  ))}
                </select>
              )}
            </Field>
          </div>
        ) : null}
        {price ? <p className="hint">Price: {price}</p> : null}
        <p className="estimate" data-testid="estimate" aria-live="polite">
          {!complete
            ? ""
            : shownEstimate?.credits !== undefined
              ? `${holdLine(shownEstimate.credits)} (the most it can cost; the rest comes back).`
              : shownEstimate
                ? ""
                : "Working out the price…"}
        </p>
        {shownEstimate?.error && !isPremiumRequired(shownEstimate.error) ? <ErrorText error={shownEstimate.error} /> : null}
        {premiumError ? (
          <p className="error" role="alert">
            {describeError(premiumError)} <Link to="/wallet#plans">See the plans</Link>
          </p>
        ) : null}
        <ErrorText error={(isPremiumRequired(create.error) ? null : create.error) ?? pricing.error ?? providers.error} />
        <button type="submit" disabled={create.busy || !complete}>
          {create.busy ? "Starting…" : "Generate"}
        </button>
      </form>
      <h2>Your generations</h2>
      <ErrorText error={list.error ?? cancel.error} />
      {jobs.length === 0 ? <p>Nothing yet: describe something above and press Generate.</p> : null}
      <ul className="jobs" aria-live="polite">
        {jobs.map((job) => (
          <li key={job.id} className="card job" data-status={job.status}>
            <p>
              <strong>{formatStatus(job.kind)}</strong> · <span className="status">{formatStatus(job.status)}</span>
              {job.cost_credits && job.cost_credits !== "0" ? ` · ${formatCredits(job.cost_credits)}` : ""} ·{" "}
              <time dateTime={job.created_at}>{formatTime(job.created_at)}</time>
            </p>
            <p className="prompt">{job.prompt}</p>
            {isCancellable(job) ? (
              <button
                type="button"
                className="secondary"
                disabled={cancel.busy}
                onClick={() => void cancel.run(job)}
                aria-label={`Cancel “${job.prompt}”`}
              >
                Cancel
              </button>
            ) : null}
            {job.id && live[job.id] && !isFinished(job) ? (
              <>
                <p className="text-result" data-testid="streaming-text" aria-busy="true">
                  {live[job.id]!.text || "Writing…"}
                </p>
                <small className="hint">
                  {live[job.id]!.tokens} tokens · {formatCredits(live[job.id]!.cost)} so far
                </small>
              </>
            ) : (
              <JobResult job={job} />
            )}
          </li>
        ))}
      </ul>
    </Page>
  );
}
