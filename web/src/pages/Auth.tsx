import { type FormEvent, useState } from "react";
import { ErrorText, Field, Page, useAction } from "../components";
import { Link, navigate } from "../router";
import { useSession } from "../session";

export function AuthPage({ mode }: { mode: "login" | "signup" }) {
  const session = useSession();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [name, setName] = useState("");
  const submit = useAction(async () => {
    if (mode === "signup") await session.api.register(email, password, name || email);
    else await session.api.login(email, password);
    await session.refreshUser();
    navigate("/studio");
  });
  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    void submit.run();
  };
  const signup = mode === "signup";
  return (
    <Page title={signup ? "Create your klik account" : "Sign in to klik"}>
      <form className="card narrow" onSubmit={onSubmit} aria-describedby="auth-help">
        {signup ? (
          <Field label="Display name">
            {(id) => <input id={id} value={name} onChange={(e) => setName(e.target.value)} autoComplete="nickname" />}
          </Field>
        ) : null}
        <Field label="Email">
          {(id) => (
            <input id={id} type="email" required value={email} onChange={(e) => setEmail(e.target.value)} autoComplete="email" />
          )}
        </Field>
        <Field label="Password" hint={signup ? "At least 8 characters." : undefined}>
          {(id) => (
            <input
              id={id}
              type="password"
              required
              value={password}
              onChange={(e) => setPassword(e.target.value)}
              autoComplete={signup ? "new-password" : "current-password"}
            />
          )}
        </Field>
        <ErrorText error={submit.error} />
        <button type="submit" disabled={submit.busy}>
          {submit.busy ? "Please wait…" : signup ? "Sign up" : "Sign in"}
        </button>
        <p id="auth-help">
          {signup ? (
            <>
              Have an account? <Link to="/login">Sign in</Link>
            </>
          ) : (
            <>
              New to klik? <Link to="/signup">Create an account</Link> ·{" "}
              <Link to="/password-reset">Forgot your password?</Link>
            </>
          )}
        </p>
      </form>
    </Page>
  );
}
