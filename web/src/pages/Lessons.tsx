import { type FormEvent, useEffect, useState } from "react";
import { ErrorText, Field, newKey, Page, useAction, useLoad } from "../components";
import { formatStatus, formatTime } from "../format";
import { useSession } from "../session";

export function LessonsPage() {
  const { api, onEvent } = useSession();
  const lessons = useLoad(() => api.call((c) => c.GET("/v1/lessons")), []);
  const [topic, setTopic] = useState("");
  const [contentType, setContentType] = useState("lesson");
  const [difficulty, setDifficulty] = useState(3);
  useEffect(() => onEvent((e) => e.kind === "job" && lessons.reload()), [onEvent, lessons]);
  const create = useAction(async () => {
    await api.call((c) =>
      c.POST("/v1/lessons", {
        body: { topic, content_type: contentType, difficulty, idempotency_key: newKey() },
      }),
    );
    setTopic("");
    lessons.reload();
  });
  const publish = useAction(async (id: string) => {
    await api.call((c) => c.POST("/v1/lessons/{lesson_id}:publish", { params: { path: { lesson_id: id } }, body: {} }));
    lessons.reload();
  });
  return (
    <Page title="Lessons">
      <form
        className="card"
        onSubmit={(e: FormEvent) => {
          e.preventDefault();
          void create.run();
        }}
      >
        <Field label="Topic">{(id) => <input id={id} required value={topic} onChange={(e) => setTopic(e.target.value)} />}</Field>
        <div className="row">
          <Field label="Type">
            {(id) => (
              <select id={id} value={contentType} onChange={(e) => setContentType(e.target.value)}>
                <option value="lesson">Lesson</option>
                <option value="quiz">Quiz</option>
                <option value="activity">Activity</option>
              </select>
            )}
          </Field>
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
      <ErrorText error={lessons.error ?? publish.error} />
      <ul className="list">
        {(lessons.data?.lessons ?? []).map((l) => (
          <li key={l.id} className="card">
            <h2>{l.topic}</h2>
            <p className="hint">
              {formatStatus(l.content_type)} · difficulty {l.difficulty} · {formatStatus(l.status)} ·{" "}
              <time dateTime={l.created_at}>{formatTime(l.created_at)}</time>
            </p>
            {l.body ? <p className="text-result">{l.body}</p> : null}
            {l.status === "ready" ? (
              <button type="button" onClick={() => void publish.run(l.id!)}>
                Publish
              </button>
            ) : null}
          </li>
        ))}
      </ul>
    </Page>
  );
}
