// What an operator does in klik studio (moderator and admin roles): the dashboard's
// charts from the summary routes, users (search, roles, delete), any user's wallet
// (grant, debit, refund a job's charge), the report queue, and the providers.
import { useState } from "react";
import type { Post, Schemas } from "../api/client";
import { BarChart } from "../Chart";
import { ErrorText, Field, newKey, Page, useAction, useDebounced, useLoad } from "../components";
import { formatCredits, formatDelta, formatMoney, formatTime } from "../format";
import {
  activeSeries,
  creditsInSeries,
  formatRate,
  jobsSeries,
  operatorPages,
  pagesFor,
  revenueSeries,
  signupSeries,
  spentSeries,
  USER_QUERY_MAX,
  USER_SEARCH_DELAY_MS,
  userQuery,
  usersPageQuery,
  usersSummary,
} from "../operator";
import { Link } from "../router";
import { useSession } from "../session";

const ROLES = ["user", "premium", "moderator", "admin"];
const WINDOWS = [7, 30, 90];
type Report = Schemas["klik.content.v1.Report"];

export function OperatorPage({ rest }: { rest: string[] }) {
  const { user } = useSession();
  const pages = operatorPages(user?.role);
  const current = rest[0] ?? "";
  const page = pages.find((p) => p.path === current);
  return (
    <Page title={page ? `Operator · ${page.title}` : "Operator"}>
      <nav aria-label="Operator" className="subnav">
        <ul>
          {pages.map((p) => (
            <li key={p.path}>
              <Link to={`/operator${p.path ? `/${p.path}` : ""}`} aria-current={p.path === current ? "page" : undefined}>
                {p.title}
              </Link>
            </li>
          ))}
        </ul>
      </nav>
      {!page ? (
        <p role="alert" className="error">
          {pages.length ? "Your role cannot open this page." : "These pages are for moderators and admins."}
        </p>
      ) : current === "" ? (
        <Dashboard />
      ) : current === "users" ? (
        rest[1] ? (
          <UserWallet userId={rest[1]} />
        ) : (
          <Users />
        )
      ) : current === "reports" ? (
        <Reports />
      ) : (
        <Providers admin={user?.role === "admin"} />
      )}
    </Page>
  );
}

function Dashboard() {
  const { api } = useSession();
  const [days, setDays] = useState(30);
  const query = { params: { query: { days } } };
  const money = useLoad(() => api.call((c) => c.GET("/v1/admin/wallet/summary", query)), [days]);
  const jobs = useLoad(() => api.call((c) => c.GET("/v1/admin/generations/summary", query)), [days]);
  const people = useLoad(() => api.call((c) => c.GET("/v1/admin/users/summary", query)), [days]);
  const revenue = revenueSeries(money.data?.days);
  const credits = (v: number) => formatCredits(v).replace(/ credits?$/, "");
  return (
    <>
      <Field label="Period">
        {(id) => (
          <select id={id} value={days} onChange={(e) => setDays(Number(e.target.value))}>
            {WINDOWS.map((n) => (
              <option key={n} value={n}>
                Last {n} days
              </option>
            ))}
          </select>
        )}
      </Field>
      <ErrorText error={money.error ?? jobs.error ?? people.error} />
      <p className="hint">Per UTC day, today last.</p>
      <div className="charts" aria-busy={!money.data || !jobs.data || !people.data}>
        {money.data ? (
          <BarChart title="Credits spent by kind" series={spentSeries(money.data.days)} format={credits} testId="chart-spent" />
        ) : null}
        {jobs.data ? <BarChart title="Jobs by status" series={jobsSeries(jobs.data.days)} testId="chart-jobs" /> : null}
        {money.data && revenue.size === 0 ? (
          <BarChart title="Revenue" series={{ labels: [], days: [] }} testId="chart-revenue" />
        ) : null}
        {[...revenue].map(([currency, series]) => (
          <BarChart
            key={currency}
            title={`Revenue (${currency.toUpperCase()})`}
            series={series}
            format={(v) => formatMoney(v, currency)}
            testId="chart-revenue"
          />
        ))}
        {people.data ? <BarChart title="Active users" series={activeSeries(people.data.days)} testId="chart-active" /> : null}
        {people.data ? <BarChart title="Sign-ups" series={signupSeries(people.data.days)} testId="chart-signups" /> : null}
        {money.data ? (
          <BarChart title="Credits granted and purchased" series={creditsInSeries(money.data.days)} format={credits} />
        ) : null}
      </div>
    </>
  );
}

function Users() {
  const { api, user: me } = useSession();
  const [search, setSearch] = useState("");
  // The server searches every account; asked for once typing pauses.
  const query = useDebounced(userQuery(search), USER_SEARCH_DELAY_MS);
  const [paging, setPaging] = useState<{ query: string; tokens: readonly string[] }>({ query: "", tokens: [""] });
  const pages = pagesFor(paging, query);
  const [done, setDone] = useState("");
  const loaded = useLoad(
    () =>
      Promise.all(
        pages.map((token) =>
          api.call((c) => c.GET("/v1/admin/users", { params: { query: usersPageQuery(query, token) } })),
        ),
      ).then((replies) => ({ query, replies })),
    [query, pages.join(",")],
  );
  // What is on screen answers the query in the box (not one typed before).
  const current = loaded.data?.query === query ? loaded.data.replies : null;
  const shown = (current ?? []).flatMap((p) => p.users ?? []);
  const next = current?.[current.length - 1]?.next_page_token ?? "";
  const searching = userQuery(search) !== query || (current === null && !loaded.error);
  const setRole = useAction(async (userId: string, email: string, role: string) => {
    await api.call((c) => c.POST("/v1/admin/users/{user_id}/role", { params: { path: { user_id: userId } }, body: { role } }));
    setDone(`${email} is now ${role}.`);
    loaded.reload();
  });
  const remove = useAction(async (userId: string, email: string) => {
    if (!window.confirm(`Delete the account ${email}? This cannot be undone.`)) return;
    await api.call((c) => c.DELETE("/v1/admin/users/{user_id}", { params: { path: { user_id: userId } } }));
    setDone(`${email} was deleted.`);
    loaded.reload();
  });
  return (
    <>
      <Field label="Search users" hint="Part of an email, handle or display name, any case; every account is searched.">
        {(id) => (
          <input
            id={id}
            type="search"
            maxLength={USER_QUERY_MAX}
            value={search}
            onChange={(e) => setSearch(e.target.value)}
          />
        )}
      </Field>
      <ErrorText error={loaded.error ?? setRole.error ?? remove.error} />
      <p role="status">{done}</p>
      <p className="hint" aria-live="polite" data-testid="users-summary" aria-busy={searching}>
        {searching ? "Searching…" : usersSummary(shown.length, query, Boolean(next))}
      </p>
      <div className="scroll">
        <table>
          <caption className="sr-only">Accounts, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Account</th>
              <th scope="col">Since</th>
              <th scope="col">Role</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((u) => (
              <tr key={u.id}>
                <td>
                  {u.display_name} <span className="hint">{u.email}</span>
                </td>
                <td>{formatTime(u.created_at)}</td>
                <td>
                  <select
                    aria-label={`Role of ${u.email}`}
                    value={u.role}
                    disabled={setRole.busy}
                    onChange={(e) => void setRole.run(u.id!, u.email!, e.target.value)}
                  >
                    {ROLES.map((r) => (
                      <option key={r}>{r}</option>
                    ))}
                  </select>
                </td>
                <td className="actions">
                  <Link to={`/operator/users/${u.id}`} aria-label={`Wallet of ${u.email}`}>
                    Wallet
                  </Link>
                  {u.id !== me?.id ? (
                    <button type="button" className="secondary" onClick={() => void remove.run(u.id!, u.email!)} aria-label={`Delete ${u.email}`}>
                      Delete
                    </button>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {next ? (
        <button type="button" className="secondary" onClick={() => setPaging({ query, tokens: [...pages, next] })}>
          Load more accounts
        </button>
      ) : null}
    </>
  );
}

function UserWallet({ userId }: { userId: string }) {
  const { api } = useSession();
  const path = { params: { path: { user_id: userId } } };
  const wallet = useLoad(() => api.call((c) => c.GET("/v1/admin/wallets/{user_id}", path)), [userId]);
  const transactions = useLoad(
    () =>
      api.call((c) =>
        c.GET("/v1/admin/wallets/{user_id}/transactions", { params: { path: { user_id: userId }, query: { page_size: 100 } } }),
      ),
    [userId],
  );
  const [amount, setAmount] = useState("");
  const [reason, setReason] = useState("");
  const [done, setDone] = useState("");
  const after = (words: string) => {
    setDone(words);
    wallet.reload();
    transactions.reload();
  };
  const grant = useAction(async () => {
    await api.call((c) =>
      c.POST("/v1/admin/wallets/{user_id}/credits", { ...path, body: { amount, reason, idempotency_key: newKey() } }),
    );
    after(`Granted ${formatCredits(amount)}.`);
  });
  const debit = useAction(async () => {
    await api.call((c) => c.POST("/v1/admin/wallets/{user_id}:debit", { ...path, body: { amount, reason, idempotency_key: newKey() } }));
    after(`Debited ${formatCredits(amount)}.`);
  });
  const refund = useAction(async (transactionId: string) => {
    await api.call((c) =>
      c.POST("/v1/admin/wallets/{user_id}/charges/{transaction_id}:refund", {
        params: { path: { user_id: userId, transaction_id: transactionId } },
        body: { reason: reason || "refunded by an operator", idempotency_key: newKey() },
      }),
    );
    after("Charge refunded.");
  });
  const refunded = new Set((transactions.data?.transactions ?? []).filter((t) => t.kind === "refund").map((t) => t.reference));
  const w = wallet.data;
  return (
    <>
      <p>
        <Link to="/operator/users">← All users</Link>
      </p>
      <h2>Wallet of {userId}</h2>
      <ErrorText error={wallet.error ?? transactions.error ?? grant.error ?? debit.error ?? refund.error} />
      <p role="status">{done}</p>
      <dl className="stats">
        <div>
          <dt>Available</dt>
          <dd data-testid="user-available">{w ? formatCredits(w.available) : "…"}</dd>
        </div>
        <div>
          <dt>Balance</dt>
          <dd>{w ? formatCredits(w.balance) : "…"}</dd>
        </div>
        <div>
          <dt>Held</dt>
          <dd>{w ? formatCredits(w.held) : "…"}</dd>
        </div>
        <div>
          <dt>Debt</dt>
          <dd>{w ? formatCredits(w.debt) : "…"}</dd>
        </div>
      </dl>
      <form
        className="card row"
        onSubmit={(e) => {
          e.preventDefault();
          void grant.run();
        }}
      >
        <Field label="Credits">{(id) => <input id={id} inputMode="numeric" value={amount} onChange={(e) => setAmount(e.target.value)} />}</Field>
        <Field label="Reason" hint="Recorded on the ledger row; used for refunds too.">
          {(id) => <input id={id} value={reason} onChange={(e) => setReason(e.target.value)} />}
        </Field>
        <div className="actions">
          <button type="submit" disabled={grant.busy}>
            Grant
          </button>
          <button type="button" className="secondary" disabled={debit.busy} onClick={() => void debit.run()}>
            Debit
          </button>
        </div>
      </form>
      <h2>Transactions</h2>
      <div className="scroll">
        <table>
          <caption className="sr-only">The user's transactions, newest first</caption>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Kind</th>
              <th scope="col">What</th>
              <th scope="col" className="num">
                Amount
              </th>
              <th scope="col" className="num">
                Balance after
              </th>
              <th scope="col">Refund</th>
            </tr>
          </thead>
          <tbody>
            {(transactions.data?.transactions ?? []).map((t) => (
              <tr key={t.id}>
                <td>{formatTime(t.created_at)}</td>
                <td>{t.kind}</td>
                <td>{t.description}</td>
                <td className="num">{formatDelta(t.amount)}</td>
                <td className="num">{formatCredits(t.balance_after)}</td>
                <td>
                  {t.kind === "charge" ? (
                    refunded.has(t.id) ? (
                      <span className="hint">Refunded</span>
                    ) : (
                      <button type="button" className="secondary" disabled={refund.busy} onClick={() => void refund.run(t.id!)}>
                        Refund
                      </button>
                    )
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

function Reports() {
  const { api } = useSession();
  const reports = useLoad(() => api.call((c) => c.GET("/v1/reports", { params: { query: { page_size: 100 } } })), []);
  const list = reports.data?.reports ?? [];
  const postIds = [...new Set(list.filter((r) => r.target_kind === "post").map((r) => r.target_id ?? ""))];
  const posts = useLoad(
    () =>
      Promise.all(
        postIds.map((id) =>
          api.call((c) => c.GET("/v1/posts/{post_id}", { params: { path: { post_id: id } } })).catch(() => null),
        ),
      ),
    [postIds.join(",")],
  );
  const byId = new Map((posts.data ?? []).filter((p): p is Post => p !== null).map((p) => [p.id, p]));
  const [hidden, setHidden] = useState<Post[]>([]);
  const [reason, setReason] = useState("");
  const [done, setDone] = useState("");
  const hide = useAction(async (postId: string) => {
    const post = await api.call((c) =>
      c.POST("/v1/posts/{post_id}:hide", { params: { path: { post_id: postId } }, body: { reason: reason || "reported" } }),
    );
    setHidden((h) => [post, ...h.filter((p) => p.id !== post.id)]);
    setDone(`Hid “${post.title ?? ""}”.`);
    reports.reload();
  });
  const unhide = useAction(async (postId: string) => {
    const post = await api.call((c) =>
      c.POST("/v1/posts/{post_id}:unhide", { params: { path: { post_id: postId } }, body: { reason } }),
    );
    setHidden((h) => h.filter((p) => p.id !== post.id));
    setDone(`“${post.title ?? ""}” is shown again.`);
  });
  const dismiss = useAction(async (report: Report) => {
    await api.call((c) =>
      c.POST("/v1/reports/{report_id}:dismiss", { params: { path: { report_id: report.id! } }, body: { reason } }),
    );
    setDone("Report dismissed.");
    reports.reload();
  });
  return (
    <>
      <Field label="Reason for the action" hint="Kept in the moderation audit.">
        {(id) => <input id={id} value={reason} onChange={(e) => setReason(e.target.value)} />}
      </Field>
      <ErrorText error={reports.error ?? hide.error ?? unhide.error ?? dismiss.error} />
      <p role="status" data-testid="moderation-status">
        {done}
      </p>
      <h2>Open reports</h2>
      {reports.data && list.length === 0 ? <p>No open reports.</p> : null}
      <ul className="list" aria-label="Open reports, oldest first">
        {list.map((r) => {
          const post = r.target_kind === "post" ? byId.get(r.target_id) : undefined;
          return (
            <li key={r.id} className="card" data-testid="report">
              <p>
                <strong>{post ? `Post “${post.title ?? ""}”` : `${r.target_kind ?? ""} ${r.target_id ?? ""}`}</strong>{" "}
                <span className="hint">reported {formatTime(r.created_at)}</span>
              </p>
              <p>Reason: {r.reason}</p>
              {post?.body ? <p className="hint">{post.body.slice(0, 200)}</p> : null}
              <div className="actions">
                {r.target_kind === "post" ? (
                  <button type="button" disabled={hide.busy} onClick={() => void hide.run(r.target_id!)}>
                    Hide post
                  </button>
                ) : null}
                <button type="button" className="secondary" disabled={dismiss.busy} onClick={() => void dismiss.run(r)}>
                  Dismiss
                </button>
              </div>
            </li>
          );
        })}
      </ul>
      {hidden.length ? (
        <>
          <h2>Hidden here</h2>
          <ul className="list">
            {hidden.map((p) => (
              <li key={p.id} className="card">
                “{p.title}” <span className="hint">{p.status}</span>{" "}
                <button type="button" className="secondary" disabled={unhide.busy} onClick={() => void unhide.run(p.id!)}>
                  Unhide
                </button>
              </li>
            ))}
          </ul>
        </>
      ) : null}
    </>
  );
}

function Providers({ admin }: { admin: boolean }) {
  const { api } = useSession();
  const providers = useLoad(() => api.call((c) => c.GET("/v1/providers")), []);
  const health = useLoad(
    () => (admin ? api.call((c) => c.GET("/v1/admin/generations/summary", { params: { query: { days: 1 } } })) : Promise.resolve(null)),
    [admin],
  );
  const rates = new Map((health.data?.providers ?? []).map((p) => [p.provider, p]));
  return (
    <>
      <ErrorText error={providers.error ?? health.error} />
      <div className="scroll">
        <table>
          <caption className="sr-only">Providers with their circuit breakers</caption>
          <thead>
            <tr>
              <th scope="col">Provider</th>
              <th scope="col">Kinds</th>
              <th scope="col">Circuit</th>
              {admin ? (
                <>
                  <th scope="col" className="num">
                    Jobs ended (24 h)
                  </th>
                  <th scope="col" className="num">
                    Failed
                  </th>
                  <th scope="col" className="num">
                    Error rate
                  </th>
                </>
              ) : null}
            </tr>
          </thead>
          <tbody>
            {(providers.data?.providers ?? []).map((p) => {
              const rate = rates.get(p.name);
              return (
                <tr key={p.name}>
                  <td>
                    {p.name} {p.sandbox ? <span className="hint">(sandbox)</span> : null}
                  </td>
                  <td>{(p.kinds ?? []).join(", ")}</td>
                  <td className={p.circuit_state === "open" ? "circuit-open" : undefined} data-testid={`circuit-${p.name}`}>
                    {(p.circuit_state ?? "").replace("_", " ")}
                  </td>
                  {admin ? (
                    <>
                      <td className="num">{rate?.jobs ?? "0"}</td>
                      <td className="num">{rate?.failed ?? "0"}</td>
                      <td className="num">{formatRate(rate?.error_rate)}</td>
                    </>
                  ) : null}
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </>
  );
}
