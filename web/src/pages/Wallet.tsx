import { useEffect, useState } from "react";
import type { Schemas } from "../api/client";
import {
  checkoutOutcome,
  clearPending,
  creditsArrived,
  loadPending,
  type PendingCheckout,
  returnUrls,
  savePending,
} from "../checkout";
import { ErrorText, newKey, Page, useAction, useLoad } from "../components";
import { formatCredits, formatDelta, formatMoney, formatTime } from "../format";
import { navigate } from "../router";
import { useSession } from "../session";
import { UsageChart } from "./Usage";

type CreditPack = Schemas["klik.wallet.v1.CreditPack"];

/** Credit packs on sale, each with a Buy button that goes to Stripe Checkout. */
function BuyCredits() {
  const { api, wallet } = useSession();
  const packs = useLoad(() => api.call((c) => c.GET("/v1/wallet/packs")), []);
  const buy = useAction(async (pack: CreditPack) => {
    const checkout = await api.call((c) =>
      c.POST("/v1/wallet/checkout", {
        body: { pack_id: pack.id, idempotency_key: newKey(), ...returnUrls(location.origin) },
      }),
    );
    if (!checkout.url) throw new Error("Stripe gave no checkout page");
    savePending({
      sessionId: checkout.session_id ?? "",
      packId: pack.id ?? "",
      credits: pack.credits ?? "0",
      balanceBefore: wallet?.balance ?? "0",
    });
    location.assign(checkout.url);
  });
  const list = packs.data?.packs ?? [];
  return (
    <section aria-labelledby="buy-title">
      <h2 id="buy-title">Buy credits</h2>
      <ErrorText error={packs.error ?? buy.error} />
      {packs.data && list.length === 0 ? <p>No credit packs are on sale right now.</p> : null}
      <ul className="packs">
        {list.map((pack) => (
          <li key={pack.id} className="card pack">
            <p>
              <strong>{formatCredits(pack.credits)}</strong>
              <br />
              {formatMoney(pack.price, pack.currency)}
            </p>
            <button
              type="button"
              disabled={buy.busy || !wallet}
              onClick={() => void buy.run(pack)}
              aria-label={`Buy ${formatCredits(pack.credits)} for ${formatMoney(pack.price, pack.currency)}`}
            >
              Buy
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}

/** After Stripe sends the person back: the outcome, until the credits arrive. */
function CheckoutReturn() {
  const { wallet, refreshWallet } = useSession();
  const [outcome] = useState(() => checkoutOutcome(location.search));
  const [pending] = useState<PendingCheckout | null>(() => loadPending());
  const arrived = pending !== null && creditsArrived(pending, wallet?.balance);
  useEffect(() => {
    if (outcome) navigate("/wallet", true); // a reload does not announce it again
    if (outcome === "cancelled" || arrived) clearPending();
  }, [outcome, arrived]);
  // The balance moves live (wallet.changed); a check now and then in case an event was missed.
  useEffect(() => {
    if (outcome !== "paid" || arrived) return;
    const timer = setInterval(() => void refreshWallet().catch(() => {}), 3000);
    return () => clearInterval(timer);
  }, [outcome, arrived, refreshWallet]);
  if (outcome === "cancelled") return <p className="status" role="status">Checkout cancelled: nothing was charged.</p>;
  if (outcome !== "paid") return null;
  return (
    <p className="status" role="status" data-testid="checkout-status">
      {arrived
        ? `Payment received: ${formatCredits(pending?.credits)} added to your wallet.`
        : "Payment received. Your credits arrive in a moment…"}
    </p>
  );
}

export function WalletPage() {
  const { api, wallet } = useSession();
  // Reloaded whenever the live balance moves.
  const transactions = useLoad(
    () => api.call((c) => c.GET("/v1/wallet/transactions", { params: { query: { page_size: 50 } } })),
    [wallet?.balance],
  );
  return (
    <Page title="Wallet">
      <CheckoutReturn />
      <dl className="stats">
        <div>
          <dt>Available</dt>
          <dd data-testid="available">{wallet ? formatCredits(wallet.available) : "…"}</dd>
        </div>
        <div>
          <dt>Balance</dt>
          <dd>{wallet ? formatCredits(wallet.balance) : "…"}</dd>
        </div>
        <div>
          <dt>Held for running generations</dt>
          <dd>{wallet ? formatCredits(wallet.held) : "…"}</dd>
        </div>
      </dl>
      <BuyCredits />
      <h2>Transactions</h2>
      <ErrorText error={transactions.error} />
      <table>
        <caption className="sr-only">Your transactions, newest first</caption>
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">What</th>
            <th scope="col" className="num">Amount</th>
            <th scope="col" className="num">Balance after</th>
          </tr>
        </thead>
        <tbody>
          {(transactions.data?.transactions ?? []).map((t) => (
            <tr key={t.id}>
              <td>{formatTime(t.created_at)}</td>
              <td>{t.description || t.kind}</td>
              <td className="num">{formatDelta(t.amount)}</td>
              <td className="num">{formatCredits(t.balance_after)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <UsageChart />
    </Page>
  );
}
