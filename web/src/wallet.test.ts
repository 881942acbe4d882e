import { describe, expect, it } from "vitest";
import {
  bucketLines,
  expiryLine,
  isRememberedSubscriber,
  mayHaveSubscription,
  planLine,
  rememberSubscriber,
  subscribeOutcome,
  subscribeReturnUrls,
  subscriptionLine,
} from "./wallet";

describe("wallet buckets", () => {
  it("shows every bucket, zeros too, in words", () => {
    const lines = bucketLines({ balance: "1600", buckets: { purchase: "1000", allowance: "500", bonus: "100" } });
    expect(lines.map((l) => [l.key, l.label, l.amount])).toEqual([
      ["purchase", "Bought", "1,000 credits"],
      ["allowance", "Plan allowance", "500 credits"],
      ["grant", "Granted", "0 credits"],
      ["bonus", "Signup bonus", "100 credits"],
    ]);
    expect(bucketLines(null).every((l) => l.credits === 0n)).toBe(true);
  });

  it("says the next expiry, or nothing", () => {
    const wallet = { next_expiry: { amount: "500", expires_at: "2027-01-02T10:00:00Z" } };
    expect(expiryLine(wallet, "UTC")).toBe("500 credits expire on 2 Jan 2027, 10:00");
    expect(expiryLine({ next_expiry: { amount: "1", expires_at: "2027-01-02T10:00:00Z" } }, "UTC")).toBe(
      "1 credit expires on 2 Jan 2027, 10:00",
    );
    expect(expiryLine({}, "UTC")).toBe("");
    expect(expiryLine(null)).toBe("");
  });
});

describe("plans and subscriptions", () => {
  it("describes a plan", () => {
    expect(planLine({ id: "premium", monthly_allowance: "2000", premium_models: true })).toBe(
      "Premium: 2,000 credits a month, premium models",
    );
    expect(planLine({ id: "basic", monthly_allowance: "500" })).toBe("Basic: 500 credits a month");
  });

  it("describes a subscription's state", () => {
    const end = "2027-01-02T10:00:00Z";
    expect(subscriptionLine({ active: true, status: "active", current_period_end: end }, "UTC")).toBe(
      "Active, renews on 2 Jan 2027, 10:00",
    );
    expect(subscriptionLine({ active: true, cancel_at_period_end: true, current_period_end: end }, "UTC")).toBe(
      "Active, cancelled: ends on 2 Jan 2027, 10:00",
    );
    expect(subscriptionLine({ active: false, status: "past_due" })).toBe("Past due");
  });

  it("comes back to the wallet from the subscription checkout", () => {
    const urls = subscribeReturnUrls("http://127.0.0.1:8080");
    expect(urls.success_url).toBe("http://127.0.0.1:8080/wallet?subscription=started&session_id={CHECKOUT_SESSION_ID}");
    expect(subscribeOutcome(new URL(urls.cancel_url).search)).toBe("cancelled");
    expect(subscribeOutcome("?subscription=started&session_id=cs_1")).toBe("started");
    expect(subscribeOutcome("?checkout=paid")).toBeNull();
  });
});

describe("whether to ask for the subscription", () => {
  const none = { remembered: false, wallet: null, transactions: [] };
  it("asks only when there is a sign of one", () => {
    expect(mayHaveSubscription(none)).toBe(false);
    expect(mayHaveSubscription({ ...none, transactions: [{ kind: "purchase" }] })).toBe(false);
    expect(mayHaveSubscription({ ...none, remembered: true })).toBe(true);
    expect(mayHaveSubscription({ ...none, wallet: { buckets: { allowance: "5" } } })).toBe(true);
    expect(mayHaveSubscription({ ...none, transactions: [{ kind: "allowance" }] })).toBe(true);
  });

  it("remembers who subscribed in this browser", () => {
    const data = new Map<string, string>();
    const storage = {
      getItem: (k: string) => data.get(k) ?? null,
      setItem: (k: string, v: string) => void data.set(k, v),
    } as Storage;
    expect(isRememberedSubscriber("u1", storage)).toBe(false);
    rememberSubscriber("u1", storage);
    rememberSubscriber("u2", storage);
    rememberSubscriber("u1", storage);
    expect(isRememberedSubscriber("u1", storage)).toBe(true);
    expect(isRememberedSubscriber("u2", storage)).toBe(true);
    expect(isRememberedSubscriber("u", storage)).toBe(false);
  });
});
