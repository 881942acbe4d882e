// The account: /account (your profile picture), the pages auth's mails link to and
// the way back into an account: /verify-email?token= (the verification link),
// /password-reset (ask for a reset link) and /reset-password?token= (the reset link:
// choose a new password).
import { type FormEvent, useEffect, useRef, useState } from "react";
import type { Asset, User } from "../api/client";
import { avatarChoices, avatarDone, avatarUpdate, currentAvatar, initials } from "../avatar";
import { ErrorText, Field, ImageUploadField, newKey, Page, useAction, useLoad } from "../components";
import { describeError } from "../api/errors";
import { formatTime } from "../format";
import { Link } from "../router";
import { useSession } from "../session";
import { uploadFile } from "../uploads";

/** The user's profile picture, or their initials when they have none. */
export function Avatar({ user, large = false }: { user: User | null; large?: boolean }) {
  const className = large ? "avatar large" : "avatar";
  if (user?.avatar_url) return <img className={className} src={user.avatar_url} alt={large ? "Your profile picture" : ""} />;
  return (
    <span className={`${className} initials`} aria-hidden={!large} aria-label={large ? "No profile picture" : undefined} role={large ? "img" : undefined}>
      {initials(user)}
    </span>
  );
}

/** /account: your profile picture — one of your images, a new upload, or none. */
export function AccountPage() {
  const session = useSession();
  const { api, user } = session;
  const images = useLoad(
    () =>
      Promise.all(
        (["IMAGE", "UPLOAD"] as const).map((kind) =>
          api.call((c) => c.GET("/v1/assets", { params: { query: { kind, page_size: 50 } } })),
        ),
      ),
    [],
  );
  const [added, setAdded] = useState<Asset[]>([]);
  const choices = avatarChoices(added, ...(images.data ?? []).map((page) => page.assets ?? []));
  const current = currentAvatar(user);
  const [done, setDone] = useState("");
  const choose = useAction(async (assetId: string) => {
    setDone("");
    await api.call((c) => c.PATCH("/v1/auth/me", { body: avatarUpdate(assetId) }));
    await session.refreshUser();
    setDone(avatarDone(assetId));
  });
  // A new image from the device becomes an asset (kind UPLOAD), then the picture.
  const upload = useAction(async (file: File) => {
    setDone("");
    const asset = await uploadFile(api, file, newKey());
    setAdded((now) => [asset, ...now]);
    await choose.run(asset.id!);
  });
  return (
    <Page title="Account">
      <section className="card" aria-labelledby="picture-title">
        <h2 id="picture-title">Profile picture</h2>
        <p className="hint">Shown with your posts, comments and notifications.</p>
        <div className="row avatar-row">
          <Avatar user={user} large />
          {current ? (
            <button type="button" className="secondary" disabled={choose.busy} onClick={() => void choose.run("")}>
              Remove the picture
            </button>
          ) : null}
        </div>
        <p role="status" data-testid="avatar-status">
          {choose.busy ? "Saving…" : done}
        </p>
        <ErrorText error={choose.error ?? upload.error} />
        <ImageUploadField
          label="Upload a new picture"
          hint="PNG, JPEG, WebP or GIF, up to 10 MiB; it becomes your picture."
          busy={upload.busy}
          upload={upload.run}
        />
        <fieldset>
          <legend>Or choose one of your images</legend>
          <ErrorText error={images.error} />
          {images.data && choices.length === 0 ? <p>No images yet — upload one, or make some in the Studio.</p> : null}
          <ul className="grid small" aria-label="Your images">
            {choices.map((a) => (
              <li key={a.id}>
                <button
                  type="button"
                  className="pick secondary"
                  aria-pressed={a.id === current}
                  disabled={choose.busy || upload.busy}
                  onClick={() => void choose.run(a.id!)}
                >
                  <img className="result" src={a.url} alt="" />
                  <span>
                    {a.kind === "UPLOAD" ? "Uploaded" : "Generated"} {formatTime(a.created_at)}
                    {a.id === current ? " (your picture)" : ""}
                  </span>
                </button>
              </li>
            ))}
          </ul>
        </fieldset>
      </section>
    </Page>
  );
}

/** The `token` query parameter of the current address ("" without one). */
export function tokenFromQuery(search: string = location.search): string {
  return new URLSearchParams(search).get("token") ?? "";
}

export function VerifyEmailPage() {
  const session = useSession();
  const token = tokenFromQuery();
  const [state, setState] = useState<"checking" | "verified" | "failed">(token ? "checking" : "failed");
  const [error, setError] = useState<unknown>(token ? null : new Error("This link has no token: open the link from the mail again."));
  const started = useRef(false);
  useEffect(() => {
    if (!token || started.current) return;
    started.current = true;
    void (async () => {
      try {
        await session.api.call((c) => c.POST("/v1/auth/verify-email", { body: { token } }));
        // Tokens issued before say `ev: false`: trade them for ones that say verified.
        if (session.api.tokens.get()) {
          await session.api.refresh();
          await session.refreshUser();
          await session.refreshWallet().catch(() => {});
        }
        setState("verified");
      } catch (e) {
        setError(e);
        setState("failed");
      }
    })();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [token]);
  return (
    <Page title="Verify your email">
      <div className="card narrow" aria-live="polite">
        {state === "checking" ? <p aria-busy="true">Checking your link…</p> : null}
        {state === "verified" ? (
          <>
            <p className="status" data-testid="verified">
              Your email address is verified. Thank you!
            </p>
            <p>{session.user ? <Link to="/studio">Go to the studio</Link> : <Link to="/login">Sign in</Link>}</p>
          </>
        ) : null}
        {state === "failed" ? (
          <>
            <ErrorText error={error} />
            <p>
              {session.user ? "Ask for a new link with the button at the top of the page." : <Link to="/login">Sign in</Link>}
            </p>
          </>
        ) : null}
      </div>
    </Page>
  );
}

/** Shown to a signed-in user whose address is not verified yet, with a resend button. */
export function VerifyBanner() {
  const session = useSession();
  const [sent, setSent] = useState(false);
  const resend = useAction(async () => {
    await session.api.call((c) => c.POST("/v1/auth/verify-email:resend", { body: {} }));
    setSent(true);
  });
  if (!session.user || session.user.email_verified) return null;
  return (
    <div className="banner" role="region" aria-label="Email verification">
      <p>
        Verify your email address to get your 100 free credits and start generating: follow the link we mailed to{" "}
        <b>{session.user.email}</b>.
      </p>
      {sent ? <p className="status">A new link is on its way.</p> : null}
      {resend.error ? <p className="error" role="alert">{describeError(resend.error)}</p> : null}
      <button type="button" onClick={() => void resend.run()} disabled={resend.busy}>
        {resend.busy ? "Sending…" : "Resend the link"}
      </button>
    </div>
  );
}

export function PasswordResetRequestPage() {
  const session = useSession();
  const [email, setEmail] = useState(session.user?.email ?? "");
  const [sent, setSent] = useState(false);
  const submit = useAction(async () => {
    await session.api.call((c) => c.POST("/v1/auth/password-reset", { body: { email } }));
    setSent(true);
  });
  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    void submit.run();
  };
  return (
    <Page title="Forgot your password?">
      <form className="card narrow" onSubmit={onSubmit}>
        <Field label="Email" hint="We mail a link to choose a new password, if this address has an account.">
          {(id) => (
            <input id={id} type="email" required value={email} onChange={(e) => setEmail(e.target.value)} autoComplete="email" />
          )}
        </Field>
        <ErrorText error={submit.error} />
        {sent ? (
          <p className="status" aria-live="polite">
            If {email} has a klik account, a link to choose a new password is on its way. It works once, for 30 minutes.
          </p>
        ) : null}
        <button type="submit" disabled={submit.busy}>
          {submit.busy ? "Please wait…" : "Mail me a link"}
        </button>
        <p>
          <Link to="/login">Back to sign in</Link>
        </p>
      </form>
    </Page>
  );
}

export function PasswordResetConfirmPage() {
  const session = useSession();
  const token = tokenFromQuery();
  const [password, setPassword] = useState("");
  const [done, setDone] = useState(false);
  const submit = useAction(async () => {
    await session.api.call((c) =>
      c.POST("/v1/auth/password-reset:confirm", { body: { token, new_password: password } }),
    );
    // Every session of the account ended: this browser's too.
    session.api.signOutLocally();
    setDone(true);
  });
  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    void submit.run();
  };
  if (!token) {
    return (
      <Page title="Choose a new password">
        <div className="card narrow">
          <p className="error" role="alert">
            This link has no token: open the link from the mail again, or <Link to="/password-reset">ask for a new one</Link>.
          </p>
        </div>
      </Page>
    );
  }
  return (
    <Page title="Choose a new password">
      <form className="card narrow" onSubmit={onSubmit}>
        {done ? (
          <p className="status" aria-live="polite">
            Your password is changed and every device was signed out. <Link to="/login">Sign in</Link> with the new one.
          </p>
        ) : (
          <>
            <Field label="New password" hint="At least 8 characters.">
              {(id) => (
                <input
                  id={id}
                  type="password"
                  required
                  minLength={8}
                  value={password}
                  onChange={(e) => setPassword(e.target.value)}
                  autoComplete="new-password"
                />
              )}
            </Field>
            <ErrorText error={submit.error} />
            <button type="submit" disabled={submit.busy}>
              {submit.busy ? "Please wait…" : "Set the new password"}
            </button>
            <p>
              <Link to="/password-reset">Ask for a new link</Link>
            </p>
          </>
        )}
      </form>
    </Page>
  );
}
