// The wallet page's pieces that are pure: buckets, plans, subscription in words.
import type { Schemas, Wallet } from "./api/client";
import { formatCredits, formatTime, toBigInt } from "./format";

export type Plan = Schemas["klik.wallet.v1.Plan"];
export type Subscription = Schemas["klik.wallet.v1.Subscription"];

const BUCKETS = [
  { key: "purchase", label: "Bought" },
  { key: "allowance", label: "Plan allowance" },
  { key: "grant", label: "Granted" },
  { key: "bonus", label: "Signup bonus" },
] as const;

/** The balance by bucket, each with its label and amount in words (all four, zeros too). */
export function bucketLines(wallet: Wallet | null): { key: string; label: string; amount: string; credits: bigint }[] {
  const buckets = wallet?.buckets ?? {};
  return BUCKETS.map(({ key, label }) => ({
    key,
    label,
    credits: toBigInt(buckets[key]),
    amount: formatCredits(buckets[key]),
  }));
}

/** "50 credits expire on 2 Jan 2027, 10:00", or "" when nothing expires. */
export function expiryLine(wallet: Wallet | null, timeZone?: string): string {
  const next = wallet?.next_expiry;
  if (!next?.expires_at || toBigInt(next.amount) <= 0n) return "";
  return `${formatCredits(next.amount)} expire${toBigInt(next.amount) === 1n ? "s" : ""} on ${formatTime(next.expires_at, timeZone)}`;
}

/** "Premium: 2,000 credits a month, premium models". */
export function planLine(plan: Plan): string {
  const name = (plan.id ?? "").charAt(0).toUpperCase() + (plan.id ?? "").slice(1);
  const perk = plan.premium_models ? ", premium models" : "";
  return `${name}: ${formatCredits(plan.monthly_allowance)} a month${perk}`;
}

/** The subscription's state in words: "Active until …", "Ends on …", "Past due". */
export function subscriptionLine(sub: Subscription, timeZone?: string): string {
  const end = formatTime(sub.current_period_end, timeZone);
  const status = (sub.status ?? "").replace(/_/g, " ");
  if (sub.active && sub.cancel_at_period_end) return `Active, cancelled: ends on ${end}`;
  if (sub.active) return end ? `Active, renews on ${end}` : "Active";
  return status ? status.charAt(0).toUpperCase() + status.slice(1) : "Unknown";
}

/** The return addresses for a subscription checkout started on `origin`. */
export function subscribeReturnUrls(origin: string): { success_url: string; cancel_url: string } {
  return {
    success_url: `${origin}/wallet?subscription=started&session_id={CHECKOUT_SESSION_ID}`,
    cancel_url: `${origin}/wallet?subscription=cancelled`,
  };
}

export function subscribeOutcome(search: string): "started" | "cancelled" | null {
  const value = new URLSearchParams(search).get("subscription");
  return value === "started" || value === "cancelled" ? value : null;
}
