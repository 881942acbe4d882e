import { type FormEvent, useEffect, useRef, useState } from "react";
import type { CreateJob, Job } from "../api/client";
import { type JobStreamState, watchJob } from "../api/jobStream";
import { ErrorText, Field, newKey, Page, useAction, useLoad } from "../components";
import { formatCredits, formatStatus, formatTime } from "../format";
import { isFinished, priceFor, upsertJob } from "../jobs";
import { useSession } from "../session";

const KINDS = [
  { value: "IMAGE", label: "Image" },
  { value: "TEXT", label: "Text" },
  { value: "AVATAR_VIDEO", label: "Talking-avatar video" },
];

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
  const [kind, setKind] = useState("IMAGE");
  const [prompt, setPrompt] = useState("");
  const [avatar, setAvatar] = useState("");
  const [voice, setVoice] = useState("");
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
  const create = useAction(async () => {
    const body: CreateJob = { kind, prompt, idempotency_key: newKey() };
    if (kind === "AVATAR_VIDEO") body.options = { avatar_id: avatar, voice_id: voice };
    const job = await api.call((c) => c.POST("/v1/generations", { body }));
    setJobs((now) => upsertJob(now, job));
    setPrompt("");
  });
  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    void create.run();
  };
  const price = priceFor(pricing.data?.prices ?? [], kind);

  return (
    <Page title="Studio">
      <form className="card" onSubmit={onSubmit}>
        <Field label="What to make">
          {(id) => (
            <select id={id} value={kind} onChange={(e) => setKind(e.target.value)}>
              {KINDS.map((k) => (
                <option key={k.value} value={k.value}>
                  {k.label}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Prompt">
          {(id) => <textarea id={id} required rows={3} value={prompt} onChange={(e) => setPrompt(e.target.value)} />}
        </Field>
        {kind === "AVATAR_VIDEO" ? (
          <div className="row">
            <Field label="Avatar">
              {(id) => (
                <select id={id} value={avatar} onChange={(e) => setAvatar(e.target.value)}>
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
                <select id={id} value={voice} onChange={(e) => setVoice(e.target.value)}>
                  <option value="">Provider's default</option>
                  {voices.map((v) => (
                    <option key={v.id} value={v.id}>
                      {v.name || v.id}
                    </option>
                  ))}
                </select>
              )}
            </Field>
          </div>
        ) : null}
        {price ? <p className="hint">Price: {price}</p> : null}
        <ErrorText error={create.error ?? pricing.error ?? providers.error} />
        <button type="submit" disabled={create.busy || !prompt.trim()}>
          {create.busy ? "Starting…" : "Generate"}
        </button>
      </form>
      <h2>Your generations</h2>
      <ErrorText error={list.error} />
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
