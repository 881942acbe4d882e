// The assistant form's rules: what the API is sent, and the CHAT models to pick from.
import type { Provider, Schemas } from "./api/client";

type Assistant = Schemas["klik.content.v1.Assistant"];

export interface AssistantForm {
  name: string;
  description: string;
  instructions: string;
  model: string; // "" for the default CHAT model
  temperature: string; // "" for the model's default
  visibility: "public" | "private";
}

export const EMPTY_ASSISTANT: AssistantForm = {
  name: "",
  description: "",
  instructions: "",
  model: "",
  temperature: "",
  visibility: "private",
};

/** Every field PATCH changes: all six, so a blank temperature goes back to the model's default. */
export const ASSISTANT_MASK = "name,description,instructions,model,temperature,visibility";

/** The form of an existing assistant (to edit it). */
export function formOf(a: Assistant): AssistantForm {
  return {
    name: a.name ?? "",
    description: a.description ?? "",
    instructions: a.instructions ?? "",
    model: a.model ?? "",
    temperature: a.temperature === undefined || a.temperature === null ? "" : String(a.temperature),
    visibility: a.visibility === "public" ? "public" : "private",
  };
}

/** The temperature as the API takes it: undefined for blank, else a number 0..2; an Error in words otherwise. */
export function parseTemperature(text: string): number | undefined {
  const trimmed = text.trim();
  if (!trimmed) return undefined;
  const value = Number(trimmed);
  if (!Number.isFinite(value) || value < 0 || value > 2) throw new Error("The temperature is a number from 0 to 2, or blank for the model's default");
  return value;
}

/** The body of POST /v1/assistants or PATCH /v1/assistants/{id} for a form. */
export function assistantBody(form: AssistantForm) {
  const temperature = parseTemperature(form.temperature);
  return {
    name: form.name.trim(),
    description: form.description.trim(),
    instructions: form.instructions,
    model: form.model,
    visibility: form.visibility,
    ...(temperature === undefined ? {} : { temperature }),
  };
}

export interface ModelChoice {
  id: string;
  label: string;
}

/** The CHAT models (and CHAT model aliases) of every provider, each once, defaults first. */
export function chatModels(providers: Provider[], aliases: { name?: string; kinds?: string[] }[] = []): ModelChoice[] {
  const seen = new Set<string>();
  const out: ModelChoice[] = [];
  for (const p of providers) {
    const models = (p.models ?? []).filter((m) => m.kinds?.includes("CHAT"));
    models.sort((a, b) => Number(!!b.is_default) - Number(!!a.is_default));
    for (const m of models) {
      if (!m.id || seen.has(m.id)) continue;
      seen.add(m.id);
      out.push({ id: m.id, label: `${m.display_name || m.id} (${p.name ?? "?"})${m.premium ? " · premium" : ""}` });
    }
  }
  for (const a of aliases) {
    if (!a.name || !a.kinds?.includes("CHAT") || seen.has(a.name)) continue;
    seen.add(a.name);
    out.push({ id: a.name, label: `${a.name} (alias)` });
  }
  return out;
}
