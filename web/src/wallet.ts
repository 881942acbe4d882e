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

/**
 * Whether to ask for the person's subscription: `GET /v1/wallet/subscription` answers
 * 404 to everyone who never subscribed, which the browser logs as an error, so it is
 * asked only when there is a sign of one: this browser having seen it before,
 * allowance credits, or an `allowance` row among the transactions shown (back from
 * its checkout, the allowance arrives with the webhook that records it). A subscriber
 * with none of these signs is found when Subscribe answers ALREADY_SUBSCRIBED.
 */
export function mayHaveSubscription(signs: {
  remembered: boolean;
  wallet: Wallet | null;
  transactions: { kind?: string }[];
}): boolean {
  return (
    signs.remembered ||
    toBigInt(signs.wallet?.buckets?.allowance) > 0n ||
    signs.transactions.some((t) => t.kind === "allowance")
  );
}

const SUBSCRIBED = "klik.subscribed";

/** Remember (in this browser) that `userId` has a subscription. */
export function rememberSubscriber(userId: string, storage: Storage = localStorage): void {
  const ids = new Set((storage.getItem(SUBSCRIBED) ?? "").split(",").filter(Boolean));
  ids.add(userId);
  storage.setItem(SUBSCRIBED, [...ids].join(","));
}

export function isRememberedSubscriber(userId: string, storage: Storage = localStorage): boolean {
  return (storage.getItem(SUBSCRIBED) ?? "").split(",").includes(userId);
}
