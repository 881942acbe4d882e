// Pieces every page uses: errors in words, labelled fields, async actions.
import { type ReactNode, useCallback, useEffect, useId, useState } from "react";
import { describeError } from "./api/errors";
import { UPLOAD_TYPES } from "./uploads";

export function ErrorText({ error }: { error: unknown }) {
  if (error === null || error === undefined) return null;
  return (
    <p className="error" role="alert">
      {describeError(error)}
    </p>
  );
}

export function Field(props: {
  label: string;
  children: (id: string) => ReactNode;
  hint?: string;
}) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{props.label}</label>
      {props.children(id)}
      {props.hint ? <small>{props.hint}</small> : null}
    </div>
  );
}

/** A file input for one image of the types uploads take: `upload` gets the file
 * picked, then the input is cleared (so the same file can be picked again). */
export function ImageUploadField(props: { label: string; hint: string; busy: boolean; upload: (file: File) => Promise<void> }) {
  const [fileKey, setFileKey] = useState(0);
  return (
    <div className="upload">
      <Field label={props.label} hint={props.hint}>
        {(id) => (
          <input
            key={fileKey}
            id={id}
            type="file"
            accept={UPLOAD_TYPES.join(",")}
            disabled={props.busy}
            onChange={(e) => {
              const file = e.target.files?.[0];
              if (file) void props.upload(file).finally(() => setFileKey((k) => k + 1));
            }}
          />
        )}
      </Field>
      <p role="status" className="hint" data-testid="upload-status">
        {props.busy ? "Uploading…" : ""}
      </p>
    </div>
  );
}

/** Run an async action with busy and error state. */
export function useAction<A extends unknown[]>(action: (...args: A) => Promise<void>) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = useCallback(
    async (...args: A) => {
      setBusy(true);
      setError(null);
      try {
        await action(...args);
      } catch (e) {
        setError(e);
      } finally {
        setBusy(false);
      }
    },
    [action],
  );
  return { run, busy, error, setError };
}

/** `value` once it has stayed the same for `ms` (a search box asks when typing pauses). */
export function useDebounced<T>(value: T, ms: number): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(timer);
  }, [value, ms]);
  return settled;
}

/** Load data when `deps` change; `reload` loads again. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [version, setVersion] = useState(0);
  useEffect(() => {
    let current = true;
    load().then(
      (value) => current && (setData(value), setError(null)),
      (e: unknown) => current && setError(e),
    );
    return () => {
      current = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, version]);
  return { data, error, reload: () => setVersion((v) => v + 1), setData };
}

export function Page({ title, children }: { title: string; children: ReactNode }) {
  useEffect(() => {
    document.title = `${title} · klik studio`;
  }, [title]);
  return (
    <section className="page" aria-labelledby="page-title">
      <h1 id="page-title" tabIndex={-1}>
        {title}
      </h1>
      {children}
    </section>
  );
}

export function newKey(): string {
  return typeof crypto !== "undefined" && "randomUUID" in crypto
    ? crypto.randomUUID()
    : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}
