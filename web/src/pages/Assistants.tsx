// Assistants: a name, instructions (the system prompt), a CHAT model and a temperature
// that every reply of a chat started with it uses. Yours (create, edit, delete) and
// everyone's public ones, each with "Start a chat".
import { type FormEvent, useState } from "react";
import type { Schemas } from "../api/client";
import { ASSISTANT_MASK, type AssistantForm, assistantBody, chatModels, EMPTY_ASSISTANT, formOf } from "../assistants";
import { ErrorText, Field, newKey, Page, useAction, useLoad } from "../components";
import { formatTime } from "../format";
import { navigate } from "../router";
import { useSession } from "../session";

type Assistant = Schemas["klik.content.v1.Assistant"];

function AssistantFields({
  form,
  setForm,
  models,
}: {
  form: AssistantForm;
  setForm: (f: AssistantForm) => void;
  models: { id: string; label: string }[];
}) {
  const set = <K extends keyof AssistantForm>(key: K, value: AssistantForm[K]) => setForm({ ...form, [key]: value });
  return (
    <>
      <Field label="Name">
        {(id) => <input id={id} required maxLength={100} value={form.name} onChange={(e) => set("name", e.target.value)} />}
      </Field>
      <Field label="Description" hint="What it is for (shown with a public assistant).">
        {(id) => <input id={id} maxLength={500} value={form.description} onChange={(e) => set("description", e.target.value)} />}
      </Field>
      <Field label="Instructions" hint="How it should answer: the system prompt of every reply. Only you see it.">
        {(id) => (
          <textarea id={id} required rows={4} maxLength={8000} value={form.instructions} onChange={(e) => set("instructions", e.target.value)} />
        )}
      </Field>
      <div className="row">
        <Field label="Model">
          {(id) => (
            <select id={id} value={form.model} onChange={(e) => set("model", e.target.value)}>
              <option value="">Default chat model</option>
              {models.map((m) => (
                <option key={m.id} value={m.id}>
                  {m.label}
                </option>
              ))}
              {form.model && !models.some((m) => m.id === form.model) ? <option value={form.model}>{form.model}</option> : null}
            </select>
          )}
        </Field>
        <Field label="Temperature (0–2)" hint="Blank for the model's default.">
          {(id) => (
            <input
              id={id}
              type="number"
              min={0}
              max={2}
              step={0.1}
              inputMode="decimal"
              value={form.temperature}
              onChange={(e) => set("temperature", e.target.value)}
            />
          )}
        </Field>
        <Field label="Visibility">
          {(id) => (
            <select id={id} value={form.visibility} onChange={(e) => set("visibility", e.target.value as AssistantForm["visibility"])}>
              <option value="private">Private: only you</option>
              <option value="public">Public: anyone can chat with it</option>
            </select>
          )}
        </Field>
      </div>
    </>
  );
}

export function AssistantsPage() {
  const { api, user } = useSession();
  const mine = useLoad(() => api.call((c) => c.GET("/v1/assistants", { params: { query: { page_size: 100 } } })), []);
  const publicOnes = useLoad(() => api.call((c) => c.GET("/v1/assistants:public", { params: { query: { page_size: 50 } } })), []);
  const providers = useLoad(() => api.call((c) => c.GET("/v1/providers")), []);
  const models = chatModels(providers.data?.providers ?? [], providers.data?.aliases ?? []);
  const [form, setForm] = useState<AssistantForm>(EMPTY_ASSISTANT);
  const [editing, setEditing] = useState<{ id: string; form: AssistantForm } | null>(null);

  const create = useAction(async () => {
    await api.call((c) => c.POST("/v1/assistants", { body: { ...assistantBody(form), idempotency_key: newKey() } }));
    setForm(EMPTY_ASSISTANT);
    mine.reload();
    publicOnes.reload();
  });
  const save = useAction(async () => {
    if (!editing) return;
    await api.call((c) =>
      c.PATCH("/v1/assistants/{assistant_id}", {
        params: { path: { assistant_id: editing.id }, query: { update_mask: ASSISTANT_MASK } },
        body: assistantBody(editing.form),
      }),
    );
    setEditing(null);
    mine.reload();
    publicOnes.reload();
  });
  const remove = useAction(async (a: Assistant) => {
    if (!window.confirm(`Delete the assistant “${a.name}”? Chats already started with it keep answering as it.`)) return;
    await api.call((c) => c.DELETE("/v1/assistants/{assistant_id}", { params: { path: { assistant_id: a.id! } } }));
    mine.reload();
    publicOnes.reload();
  });
  const start = useAction(async (a: Assistant) => {
    const chat = await api.call((c) => c.POST("/v1/chats", { body: { assistant_id: a.id!, title: `Chat with ${a.name}` } }));
    navigate(`/chats/${chat.id}`);
  });

  return (
    <Page title="Assistants">
      <form
        className="card"
        aria-labelledby="new-assistant"
        onSubmit={(e: FormEvent) => {
          e.preventDefault();
          void create.run();
        }}
      >
        <h2 id="new-assistant">New assistant</h2>
        <AssistantFields form={form} setForm={setForm} models={models} />
        <ErrorText error={create.error ?? providers.error} />
        <button type="submit" disabled={create.busy}>
          Create assistant
        </button>
      </form>

      <h2>Your assistants</h2>
      <ErrorText error={mine.error ?? remove.error ?? start.error} />
      {mine.data && !mine.data.assistants?.length ? <p>No assistants yet: create one above.</p> : null}
      <ul className="list" aria-label="Your assistants">
        {(mine.data?.assistants ?? []).map((a) =>
          editing && editing.id === a.id ? (
            <li key={a.id} className="card">
              <form
                aria-label={`Edit ${a.name}`}
                onSubmit={(e: FormEvent) => {
                  e.preventDefault();
                  void save.run();
                }}
              >
                <AssistantFields form={editing.form} setForm={(f) => setEditing({ id: a.id!, form: f })} models={models} />
                <ErrorText error={save.error} />
                <div className="actions">
                  <button type="submit" disabled={save.busy}>
                    Save
                  </button>
                  <button type="button" className="secondary" onClick={() => (setEditing(null), save.setError(null))}>
                    Cancel
                  </button>
                </div>
              </form>
            </li>
          ) : (
            <li key={a.id} className="card" data-testid="my-assistant">
              <h3>{a.name}</h3>
              <p className="hint">
                {a.visibility === "public" ? "Public" : "Private"} · {a.model || "default model"}
                {a.temperature !== undefined ? ` · temperature ${a.temperature}` : ""} · changed{" "}
                <time dateTime={a.updated_at}>{formatTime(a.updated_at)}</time>
              </p>
              {a.description ? <p>{a.description}</p> : null}
              <div className="actions">
                <button type="button" onClick={() => void start.run(a)} disabled={start.busy}>
                  Start a chat<span className="sr-only"> with {a.name}</span>
                </button>
                <button type="button" className="secondary" onClick={() => setEditing({ id: a.id!, form: formOf(a) })}>
                  Edit<span className="sr-only"> {a.name}</span>
                </button>
                <button type="button" className="danger" onClick={() => void remove.run(a)} disabled={remove.busy}>
                  Delete<span className="sr-only"> {a.name}</span>
                </button>
              </div>
            </li>
          ),
        )}
      </ul>

      <h2>Public assistants</h2>
      <ErrorText error={publicOnes.error} />
      {publicOnes.data && !publicOnes.data.assistants?.length ? <p>No public assistants yet.</p> : null}
      <ul className="list" aria-label="Public assistants">
        {(publicOnes.data?.assistants ?? []).map((a) => (
          <li key={a.id} className="card" data-testid="public-assistant">
            <h3>{a.name}</h3>
            <p className="hint">
              by {a.owner_id === user?.id ? "you" : a.owner?.display_name || "someone"} · {a.model || "default model"}
            </p>
            {a.description ? <p>{a.description}</p> : null}
            <button type="button" onClick={() => void start.run(a)} disabled={start.busy}>
              Start a chat<span className="sr-only"> with {a.name}</span>
            </button>
          </li>
        ))}
      </ul>
    </Page>
  );
}
