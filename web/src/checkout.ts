// Buying a credit pack: Stripe Checkout (the sandbox's page on `make run`) is a
// full-page visit away from the app, so what the wallet needs when the person
// comes back — which session, and the balance before paying — waits in
// sessionStorage meanwhile.
import { toBigInt } from "./format";

export interface PendingCheckout {
  sessionId: string;
  packId: string;
  credits: string;
  balanceBefore: string;
}

const KEY = "klik.checkout";

/** The return addresses for a checkout started on `origin` (the app's /wallet page). */
export function returnUrls(origin: string): { success_url: string; cancel_url: string } {
  return {
    success_url: `${origin}/wallet?checkout=paid&session_id={CHECKOUT_SESSION_ID}`,
    cancel_url: `${origin}/wallet?checkout=cancelled`,
  };
}

/** What the address the person came back to says: paid, cancelled, or nothing. */
export function checkoutOutcome(search: string): "paid" | "cancelled" | null {
  const value = new URLSearchParams(search).get("checkout");
  return value === "paid" || value === "cancelled" ? value : null;
}

/** Whether the credits of `pending` have arrived, given the balance now. */
export function creditsArrived(pending: PendingCheckout, balance: string | undefined): boolean {
  return balance !== undefined && toBigInt(balance) >= toBigInt(pending.balanceBefore) + toBigInt(pending.credits);
}

export function savePending(pending: PendingCheckout, storage: Storage = sessionStorage): void {
  storage.setItem(KEY, JSON.stringify(pending));
}

export function loadPending(storage: Storage = sessionStorage): PendingCheckout | null {
  try {
    const raw = storage.getItem(KEY);
    return raw ? (JSON.parse(raw) as PendingCheckout) : null;
  } catch {
    return null;
  }
}

export function clearPending(storage: Storage = sessionStorage): void {
  storage.removeItem(KEY);
}
