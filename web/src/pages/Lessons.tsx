import { type FormEvent, useEffect, useState } from "react";
import type { Lesson } from "../api/client";
import { ErrorText, Field, newKey, Page, useAction, useLoad } from "../components";
import { formatStatus, formatTime } from "../format";
import { CONTENT_TYPES, lessonActions, lessonChanges, type LessonForm, lessonForm } from "../lessons";
import { useSession } from "../session";

function ContentTypeSelect({ id, value, onChange, all }: { id: string; value: string; onChange: (v: string) => void; all?: string }) {
  return (
    <select id={id} value={value} onChange={(e) => onChange(e.target.value)}>
      {all !== undefined ? <option value="">{all}</option> : null}
      {CONTENT_TYPES.map(([v, name]) => (
        <option key={v} value={v}>
          {name}
        </option>
      ))}
    </select>
  );
}

function LessonEditor({ lesson, onDone }: { lesson: Lesson; onDone: (saved: Lesson | null) => void }) {
  const { api } = useSession();
  const [form, setForm] = useState<LessonForm>(lessonForm(lesson));
  const save = useAction(async () => {
    const changes = lessonChanges(lesson, form);
    if (!changes) return onDone(null);
    const saved = await api.call((c) =>
      c.PATCH("/v1/lessons/{lesson_id}", { params: { path: { lesson_id: lesson.id! } }, body: changes }),
    );
    onDone(saved);
  });
  return (
    <form
      aria-label={`Edit ${lesson.topic}`}
      onSubmit={(e: FormEvent) => {
        e.preventDefault();
        void save.run();
      }}
    >
      <Field label="Topic">
        {(id) => <input id={id} required value={form.topic} onChange={(e) => setForm({ ...form, topic: e.target.value })} />}
      </Field>
      <div className="row">
        <Field label="Type">
          {(id) => <ContentTypeSelect id={id} value={form.content_type} onChange={(v) => setForm({ ...form, content_type: v })} />}
        </Field>
        <Field label="Difficulty (1–10)">
          {(id) => (
            <input
              id={id}
              type="number"
              min={1}
              max={10}
              required
              value={form.difficulty}
              onChange={(e) => setForm({ ...form, difficulty: Number(e.target.value) })}
            />
          )}
        </Field>
      </div>
      <Field label="Text">
        {(id) => <textarea id={id} rows={10} maxLength={100000} value={form.body} onChange={(e) => setForm({ ...form, body: e.target.value })} />}
      </Field>
      <ErrorText error={save.error} />
      <div className="actions">
        <button type="submit" disabled={save.busy}>
          Save changes
        </button>
        <button type="button" className="secondary" onClick={() => onDone(null)}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function MyLessons() {
  const { api, onEvent } = useSession();
  const [filter, setFilter] = useState("");
  const lessons = useLoad(
    () => api.call((c) => c.GET("/v1/lessons", { params: { query: { content_type: filter, page_size: 100 } } })),
    [filter],
  );
  const [topic, setTopic] = useState("");
  const [contentType, setContentType] = useState("lesson");
  const [difficulty, setDifficulty] = useState(3);
  const [editing, setEditing] = useState<string | null>(null);
  useEffect(() => onEvent((e) => e.kind === "job" && lessons.reload()), [onEvent, lessons]);
  // The lesson takes its body when content has heard of the job's end, which may come
  // after the job event: look again now and then while one is still generating.
  const generating = (lessons.data?.lessons ?? []).some((l) => l.status === "generating");
  useEffect(() => {
    if (!generating) return;
    const timer = setTimeout(lessons.reload, 1500);
    return () => clearTimeout(timer);
  }, [generating, lessons]);
  const create = useAction(async () => {
    await api.call((c) =>
      c.POST("/v1/lessons", {
        body: { topic, content_type: contentType, difficulty, idempotency_key: newKey() },
      }),
    );
    setTopic("");
    lessons.reload();
  });
  const act = useAction(async (lesson: Lesson, what: "publish" | "unpublish" | "duplicate" | "delete") => {
    const path = { lesson_id: lesson.id! };
    if (what === "publish") await api.call((c) => c.POST("/v1/lessons/{lesson_id}:publish", { params: { path }, body: {} }));
    if (what === "unpublish") await api.call((c) => c.POST("/v1/lessons/{lesson_id}:unpublish", { params: { path }, body: {} }));
    if (what === "duplicate") await api.call((c) => c.POST("/v1/lessons/{lesson_id}:duplicate", { params: { path }, body: { idempotency_key: newKey() } }));
    if (what === "delete") {
      if (!window.confirm(`Delete the ${lesson.content_type ?? "lesson"} “${lesson.topic}”? This cannot be undone.`)) return;
      await api.call((c) => c.DELETE("/v1/lessons/{lesson_id}", { params: { path } }));
    }
    lessons.reload();
  });
  const list = lessons.data?.lessons ?? [];
  return (
    <>
      <form
        className="card"
        aria-label="Write a lesson"
        onSubmit={(e: FormEvent) => {
          e.preventDefault();
          void create.run();
        }}
      >
        <Field label="Topic">{(id) => <input id={id} required value={topic} onChange={(e) => setTopic(e.target.value)} />}</Field>
        <div className="row">
          <Field label="Type">{(id) => <ContentTypeSelect id={id} value={contentType} onChange={setContentType} />}</Field>
          <Field label="Difficulty (1–10)">
            {(id) => (
              <input id={id} type="number" min={1} max={10} value={difficulty} onChange={(e) => setDifficulty(Number(e.target.value))} />
            )}
          </Field>
        </div>
        <ErrorText error={create.error} />
        <button type="submit" disabled={create.busy}>
          Write lesson
        </button>
      </form>
      <div className="row">
        <Field label="Show">{(id) => <ContentTypeSelect id={id} value={filter} onChange={setFilter} all="All types" />}</Field>
      </div>
      <ErrorText error={lessons.error ?? act.error} />
      {lessons.data && !list.length ? <p>{filter ? `No ${filter}s yet.` : "No lessons yet: write one above."}</p> : null}
      <ul className="list" aria-label="Your lessons">
        {list.map((l) => {
          const can = lessonActions(l, true);
          return (
            <li key={l.id} className="card" data-status={l.status}>
              {editing === l.id ? (
                <LessonEditor
                  lesson={l}
                  onDone={(saved) => {
                    setEditing(null);
                    if (saved) lessons.reload();
                  }}
                />
              ) : (
                <>
                  <h2>{l.topic}</h2>
                  <p className="hint">
                    {formatStatus(l.content_type)} · difficulty {l.difficulty} · {formatStatus(l.status)} ·{" "}
                    <time dateTime={l.created_at}>{formatTime(l.created_at)}</time>
                  </p>
                  {l.body ? <p className="text-result">{l.body}</p> : null}
                  <div className="actions">
                    {can.publish ? (
                      <button type="button" onClick={() => void act.run(l, "publish")} disabled={act.busy}>
                        Publish<span className="sr-only"> {l.topic}</span>
                      </button>
                    ) : null}
                    {can.unpublish ? (
                      <button type="button" className="secondary" onClick={() => void act.run(l, "unpublish")} disabled={act.busy}>
                        Unpublish<span className="sr-only"> {l.topic}</span>
                      </button>
                    ) : null}
                    {can.edit ? (
                      <button type="button" className="secondary" onClick={() => setEditing(l.id!)}>
                        Edit<span className="sr-only"> {l.topic}</span>
                      </button>
                    ) : null}
                    {can.duplicate ? (
                      <button type="button" className="secondary" onClick={() => void act.run(l, "duplicate")} disabled={act.busy}>
                        Duplicate<span className="sr-only"> {l.topic}</span>
                      </button>
                    ) : null}
                    {can.remove ? (
                      <button type="button" className="danger" onClick={() => void act.run(l, "delete")} disabled={act.busy}>
                        Delete<span className="sr-only"> {l.topic}</span>
                      </button>
                    ) : null}
                  </div>
                </>
              )}
            </li>
          );
        })}
      </ul>
    </>
  );
}

function Catalogue({ onCopied }: { onCopied: () => void }) {
  const { api, user } = useSession();
  const [contentType, setContentType] = useState("");
  const [difficulty, setDifficulty] = useState(0);
  const [extra, setExtra] = useState<{ lessons: Lesson[]; next: string } | null>(null);
  const first = useLoad(() => {
    setExtra(null);
    return api.call((c) => c.GET("/v1/lessons:catalog", { params: { query: { content_type: contentType, difficulty, page_size: 20 } } }));
  }, [contentType, difficulty]);
  const lessons = [...(first.data?.lessons ?? []), ...(extra?.lessons ?? [])];
  const next = extra ? extra.next : (first.data?.next_page_token ?? "");
  const more = useAction(async () => {
    const page = await api.call((c) =>
      c.GET("/v1/lessons:catalog", { params: { query: { content_type: contentType, difficulty, page_size: 20, page_token: next } } }),
    );
    setExtra({ lessons: [...(extra?.lessons ?? []), ...(page.lessons ?? [])], next: page.next_page_token ?? "" });
  });
  const copy = useAction(async (lesson: Lesson) => {
    await api.call((c) => c.POST("/v1/lessons/{lesson_id}:duplicate", { params: { path: { lesson_id: lesson.id! } }, body: { idempotency_key: newKey() } }));
    onCopied();
  });
  return (
    <>
      <div className="row">
        <Field label="Type">{(id) => <ContentTypeSelect id={id} value={contentType} onChange={setContentType} all="All types" />}</Field>
        <Field label="Difficulty">
          {(id) => (
            <select id={id} value={difficulty} onChange={(e) => setDifficulty(Number(e.target.value))}>
              <option value={0}>Any difficulty</option>
              {Array.from({ length: 10 }, (_, i) => i + 1).map((d) => (
                <option key={d} value={d}>
                  {d}
                </option>
              ))}
            </select>
          )}
        </Field>
      </div>
      <ErrorText error={first.error ?? more.error ?? copy.error} />
      {first.data && !lessons.length ? <p>No published lessons match these filters.</p> : null}
      <ul className="list" aria-label="Published lessons">
        {lessons.map((l) => (
          <li key={l.id} className="card">
            <h2>{l.topic}</h2>
            <p className="hint">
              {formatStatus(l.content_type)} · difficulty {l.difficulty} · {l.owner_id === user?.id ? "yours · " : ""}published{" "}
              <time dateTime={l.published_at}>{formatTime(l.published_at)}</time>
            </p>
            {l.body ? <p className="text-result">{l.body}</p> : null}
            <button type="button" className="secondary" onClick={() => void copy.run(l)} disabled={copy.busy}>
              Copy to my lessons<span className="sr-only"> ({l.topic})</span>
            </button>
          </li>
        ))}
      </ul>
      {next ? (
        <button type="button" className="secondary" onClick={() => void more.run()} disabled={more.busy}>
          {more.busy ? "Loading…" : "Load more"}
        </button>
      ) : null}
    </>
  );
}

export function LessonsPage() {
  const [tab, setTab] = useState<"mine" | "catalogue">("mine");
  const [copied, setCopied] = useState(false);
  const tabs = [
    ["mine", "My lessons"],
    ["catalogue", "Catalogue"],
  ] as const;
  return (
    <Page title="Lessons">
      <div className="tabs" role="tablist" aria-label="Lessons">
        {tabs.map(([key, name]) => (
          <button
            key={key}
            type="button"
            role="tab"
            id={`tab-${key}`}
            aria-selected={tab === key}
            aria-controls="lessons-panel"
            tabIndex={tab === key ? 0 : -1}
            onClick={() => (setTab(key), setCopied(false))}
            onKeyDown={(e) => {
              if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
                const other = key === "mine" ? "catalogue" : "mine";
                setTab(other);
                document.getElementById(`tab-${other}`)?.focus();
              }
            }}
          >
            {name}
          </button>
        ))}
      </div>
      <p role="status" className="hint">
        {copied ? "Copied to your lessons." : ""}
      </p>
      <div id="lessons-panel" role="tabpanel" aria-labelledby={`tab-${tab}`}>
        {tab === "mine" ? <MyLessons /> : <Catalogue onCopied={() => setCopied(true)} />}
      </div>
    </Page>
  );
}
