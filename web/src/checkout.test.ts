import { describe, expect, it } from "vitest";
import { checkoutOutcome, clearPending, creditsArrived, loadPending, returnUrls, savePending } from "./checkout";
import { formatMoney } from "./format";

function memoryStorage(): Storage {
  const items = new Map<string, string>();
  return {
    get length() {
      return items.size;
    },
    clear: () => items.clear(),
    getItem: (k) => items.get(k) ?? null,
    key: (i) => [...items.keys()][i] ?? null,
    removeItem: (k) => void items.delete(k),
    setItem: (k, v) => void items.set(k, v),
  };
}

describe("buying credits", () => {
  it("returns to the wallet, naming the session Stripe fills in", () => {
    expect(returnUrls("http://127.0.0.1:8080")).toEqual({
      success_url: "http://127.0.0.1:8080/wallet?checkout=paid&session_id={CHECKOUT_SESSION_ID}",
      cancel_url: "http://127.0.0.1:8080/wallet?checkout=cancelled",
    });
    expect(checkoutOutcome("?checkout=paid&session_id=cs_1")).toBe("paid");
    expect(checkoutOutcome("?checkout=cancelled")).toBe("cancelled");
    expect(checkoutOutcome("?checkout=weird")).toBeNull();
    expect(checkoutOutcome("")).toBeNull();
  });

  it("knows when the pack's credits have arrived", () => {
    const pending = { sessionId: "cs_1", packId: "starter", credits: "100", balanceBefore: "95" };
    expect(creditsArrived(pending, "95")).toBe(false);
    expect(creditsArrived(pending, "194")).toBe(false);
    expect(creditsArrived(pending, "195")).toBe(true);
    expect(creditsArrived(pending, undefined)).toBe(false);
  });

  it("keeps the pending checkout across the visit to Stripe", () => {
    const storage = memoryStorage();
    const pending = { sessionId: "cs_1", packId: "starter", credits: "100", balanceBefore: "95" };
    savePending(pending, storage);
    expect(loadPending(storage)).toEqual(pending);
    clearPending(storage);
    expect(loadPending(storage)).toBeNull();
    storage.setItem("klik.checkout", "{broken");
    expect(loadPending(storage)).toBeNull();
  });

  it("shows prices in the currency's own units", () => {
    expect(formatMoney("500", "usd")).toBe("$5.00");
    expect(formatMoney("2500", "eur")).toBe("€25.00");
    expect(formatMoney("500", "jpy")).toBe("¥500");
    expect(formatMoney("500", "??")).toBe("500 ??");
  });
});
