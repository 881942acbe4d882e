import { useEffect, useRef, useState } from "react";
import type { Schemas, Transaction } from "../api/client";
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
import { ApiError } from "../api/errors";
import {
  bucketLines,
  expiryLine,
  isRememberedSubscriber,
  mayHaveSubscription,
  planLine,
  type Plan,
  rememberSubscriber,
  subscribeOutcome,
  subscribeReturnUrls,
  subscriptionLine,
} from "../wallet";
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

/** The balance by bucket, the next credits to expire, and any debt. */
function Buckets() {
  const { api, wallet } = useSession();
  // The live wallet (wallet.changed) carries the totals; the buckets come from GET /v1/wallet.
  const full = useLoad(() => api.call((c) => c.GET("/v1/wallet")), [wallet?.balance, wallet?.held]);
  const expiry = expiryLine(full.data);
  const debt = full.data?.debt && full.data.debt !== "0" ? full.data.debt : "";
  return (
    <section aria-labelledby="buckets-title">
      <h2 id="buckets-title">Where your credits come from</h2>
      <ErrorText error={full.error} />
      <dl className="stats buckets">
        {bucketLines(full.data).map((line) => (
          <div key={line.key} data-testid={`bucket-${line.key}`}>
            <dt>{line.label}</dt>
            <dd>{full.data ? line.amount : "…"}</dd>
          </div>
        ))}
      </dl>
      {expiry ? <p className="hint" data-testid="next-expiry">Next to expire: {expiry}, unless spent first.</p> : null}
      {debt ? (
        <p className="error" role="alert" data-testid="debt">
          You owe {formatCredits(debt)} for a refunded payment: spending is paused until it is settled.
        </p>
      ) : null}
    </section>
  );
}

/** The plans on sale, the person's subscription, and the billing portal. */
function Plans({ transactions }: { transactions: Transaction[] }) {
  const { api, user, wallet, refreshWallet } = useSession();
  const [outcome] = useState(() => subscribeOutcome(location.search));
  const [, setRemembered] = useState(0); // re-read the remembered subscribers
  const plans = useLoad(() => api.call((c) => c.GET("/v1/wallet/plans")), []);
  const ask = mayHaveSubscription({
    remembered: user?.id ? isRememberedSubscriber(user.id) : false,
    wallet,
    transactions,
  });
  const subscription = useLoad(async () => {
    if (!ask) return { sub: null };
    try {
      return { sub: await api.call((c) => c.GET("/v1/wallet/subscription")) };
    } catch (error) {
      if (error instanceof ApiError && error.code === "SUBSCRIPTION_NOT_FOUND") return { sub: null };
      throw error;
    }
  }, [ask]);
  const sub = subscription.data?.sub;
  const active = Boolean(sub?.active);
  useEffect(() => {
    if (outcome) navigate("/wallet", true); // a reload does not announce it again
  }, [outcome]);
  useEffect(() => {
    if (sub && user?.id) rememberSubscriber(user.id);
  }, [sub, user?.id]);
  // Back from paying: Stripe's webhooks record the subscription and grant its allowance
  // a moment later. The balance moves live (wallet.changed, which reloads the
  // transactions: the allowance row is the sign to ask); a check now and then in case
  // an event was missed.
  const { reload } = subscription;
  useEffect(() => {
    if (outcome !== "started" || active) return;
    const timer = setInterval(() => (ask ? reload() : void refreshWallet().catch(() => {})), 2000);
    return () => clearInterval(timer);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [outcome, active, ask]);
  useEffect(() => {
    // The plan's perk (the role `premium`) is in the next access token.
    if (outcome === "started" && active) void api.refresh().then(() => refreshWallet().catch(() => {}));
  }, [api, outcome, active, refreshWallet]);
  const subscribe = useAction(async (plan: Plan) => {
    let checkout;
    try {
      checkout = await api.call((c) =>
        c.POST("/v1/wallet/subscribe", {
          body: { plan_id: plan.id ?? "", idempotency_key: newKey(), ...subscribeReturnUrls(location.origin) },
        }),
      );
    } catch (error) {
      // A plan this browser did not know of: show it (and its Manage billing).
      if (error instanceof ApiError && error.code === "ALREADY_SUBSCRIBED" && user?.id) {
        rememberSubscriber(user.id);
        setRemembered((n) => n + 1);
      }
      throw error;
    }
    if (!checkout.url) throw new Error("Stripe gave no checkout page");
    location.assign(checkout.url);
  });
  const portal = useAction(async () => {
    const answer = await api.call((c) =>
      c.POST("/v1/wallet/billing-portal", { body: { return_url: `${location.origin}/wallet` } }),
    );
    if (!answer.url) throw new Error("Stripe gave no billing page");
    location.assign(answer.url);
  });
  const list = plans.data?.plans ?? [];
  // Sent here to see the plans (a premium model refused in the studio): show them.
  const heading = useRef<HTMLHeadingElement>(null);
  const shown = Boolean(plans.data);
  useEffect(() => {
    if (shown && location.hash === "#plans") heading.current?.scrollIntoView();
  }, [shown]);
  return (
    <section aria-labelledby="plans-title" id="plans">
      <h2 id="plans-title" ref={heading}>
        Plans
      </h2>
      {outcome === "cancelled" ? (
        <p className="status" role="status">Subscription not started: nothing was charged.</p>
      ) : null}
      {outcome === "started" ? (
        <p className="status" role="status" data-testid="subscribe-status">
          {active ? "Your plan is active: its allowance is in your wallet." : "Payment received. Your plan starts in a moment…"}
        </p>
      ) : null}
      <ErrorText error={plans.error ?? subscription.error ?? subscribe.error ?? portal.error} />
      {sub ? (
        <div className="card" data-testid="subscription">
          <p>
            Your plan: <strong>{sub.plan_id}</strong> ·{" "}
            <span data-testid="subscription-status">{subscriptionLine(sub)}</span>
            {sub.cancel_at_period_end ? " · it will not renew" : ""}
          </p>
          <button type="button" disabled={portal.busy} onClick={() => void portal.run()}>
            {portal.busy ? "Opening…" : "Manage billing"}
          </button>
        </div>
      ) : subscription.data ? (
        <p>You have no plan: a plan adds credits every month.</p>
      ) : null}
      {plans.data && list.length === 0 ? <p>No plans are on sale right now.</p> : null}
      <ul className="packs">
        {list.map((plan) => (
          <li key={plan.id} className="card pack" data-testid={`plan-${plan.id}`}>
            <p>{planLine(plan)}</p>
            <button
              type="button"
              disabled={subscribe.busy || active}
              onClick={() => void subscribe.run(plan)}
              aria-label={`Subscribe to ${plan.id}`}
            >
              {sub?.active && sub.plan_id === plan.id ? "Your plan" : "Subscribe"}
            </button>
          </li>
        ))}
      </ul>
    </section>
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
      <Buckets />
      <Plans transactions={transactions.data?.transactions ?? []} />
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
