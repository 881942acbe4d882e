// The operator pages' logic without React: who sees which page, the dashboard's
// series from the summary routes, and the users search.
import type { Schemas } from "./api/client";
import { type Series, toSeries } from "./charts";

type UsageDay = Schemas["klik.wallet.v1.UsageDay"];
type WalletDay = Schemas["klik.wallet.v1.WalletSummaryDay"];
type JobsDay = Schemas["klik.generation.v1.GenerationSummaryDay"];
type UsersDay = Schemas["klik.auth.v1.UsersSummaryDay"];

export interface OperatorPage {
  path: string; // under /operator
  title: string;
  roles: readonly string[];
}

// Moderators handle the report queue and see the providers' circuits; the rest is
// admin-only, as the RPCs behind it are.
export const OPERATOR_PAGES: readonly OperatorPage[] = [
  { path: "", title: "Dashboard", roles: ["admin"] },
  { path: "users", title: "Users", roles: ["admin"] },
  { path: "reports", title: "Reports", roles: ["admin", "moderator"] },
  { path: "providers", title: "Providers", roles: ["admin", "moderator"] },
];

export function isOperator(role: string | undefined): boolean {
  return role === "admin" || role === "moderator";
}

/** The operator pages `role` may open, in navigation order. */
export function operatorPages(role: string | undefined): OperatorPage[] {
  return OPERATOR_PAGES.filter((p) => role !== undefined && p.roles.includes(role));
}

/** Where /operator leads a role: its first page. */
export function operatorHome(role: string | undefined): string {
  const first = operatorPages(role)[0];
  return first ? `/operator${first.path ? `/${first.path}` : ""}` : "/studio";
}

export function usageSeries(days: readonly UsageDay[] = []): Series {
  return toSeries(days, (d) => d.date, (d) => (d.by_kind ?? []).map((k) => ({ label: k.kind, value: k.credits })));
}

export function spentSeries(days: readonly WalletDay[] = []): Series {
  return toSeries(days, (d) => d.date, (d) => (d.spent_by_kind ?? []).map((k) => ({ label: k.kind, value: k.credits })));
}

/** Revenue per day, one series per currency (amounts in minor units): money in
 * different currencies is never added up. */
export function revenueSeries(days: readonly WalletDay[] = []): Map<string, Series> {
  const currencies = new Set(days.flatMap((d) => (d.revenue ?? []).map((r) => r.currency ?? "")));
  const out = new Map<string, Series>();
  for (const currency of currencies) {
    out.set(
      currency,
      toSeries(
        days,
        (d) => d.date,
        (d) => (d.revenue ?? []).filter((r) => r.currency === currency).map((r) => ({ label: currency, value: r.amount })),
      ),
    );
  }
  return out;
}

export function creditsInSeries(days: readonly WalletDay[] = []): Series {
  return toSeries(
    days,
    (d) => d.date,
    (d) => [
      { label: "granted", value: d.credits_granted },
      { label: "purchased", value: d.credits_purchased },
    ],
  );
}

export function jobsSeries(days: readonly JobsDay[] = []): Series {
  return toSeries(days, (d) => d.date, (d) => (d.by_status ?? []).map((c) => ({ label: c.label, value: c.jobs })));
}

export function activeSeries(days: readonly UsersDay[] = []): Series {
  return toSeries(days, (d) => d.date, (d) => [{ label: "active users", value: d.active_users }]);
}

export function signupSeries(days: readonly UsersDay[] = []): Series {
  return toSeries(days, (d) => d.date, (d) => [{ label: "sign-ups", value: d.signups }]);
}

// The users search runs on the server (GET /v1/admin/users?query=): email, handle or
// display name containing the text, any case, across every account, not only the
// pages loaded. It is asked for once typing pauses.
export const USER_QUERY_MAX = 200; // ListUsersRequest.query's max_length
export const USER_SEARCH_DELAY_MS = 300;
export const USERS_PAGE_SIZE = 100;

/** What the search box sends: trimmed, and cut at the API's limit (a longer query is refused). */
export function userQuery(input: string): string {
  return input.trim().slice(0, USER_QUERY_MAX);
}

/** The query string of one page of GET /v1/admin/users for `query` ("" lists every account). */
export function usersPageQuery(query: string, pageToken: string): { page_size: number; page_token?: string; query?: string } {
  return { page_size: USERS_PAGE_SIZE, ...(pageToken ? { page_token: pageToken } : {}), ...(query ? { query } : {}) };
}

/** The pages to show: the tokens loaded for `query`, or only the first page when the query changed. */
export function pagesFor(loaded: { query: string; tokens: readonly string[] }, query: string): readonly string[] {
  return loaded.query === query ? loaded.tokens : [""];
}

/** The line under the search box: how many accounts are shown, and whether there are more. */
export function usersSummary(count: number, query: string, more: boolean): string {
  const accounts = count === 1 ? "1 account" : `${count} accounts`;
  const shown = query ? `${accounts} ${count === 1 ? "matches" : "match"} “${query}”` : accounts;
  return more ? `${shown}, more to load` : shown;
}

/** "12.5 %" for 0.125. */
export function formatRate(rate: number | undefined): string {
  return `${(Math.round((rate ?? 0) * 1000) / 10).toString()} %`;
}
