import { ErrorText, Page, useLoad } from "../components";
import { formatCredits, formatDelta, formatTime } from "../format";
import { useSession } from "../session";

export function WalletPage() {
  const { api, wallet } = useSession();
  // Reloaded whenever the live balance moves.
  const transactions = useLoad(
    () => api.call((c) => c.GET("/v1/wallet/transactions", { params: { query: { page_size: 50 } } })),
    [wallet?.balance],
  );
  return (
    <Page title="Wallet">
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
    </Page>
  );
}
