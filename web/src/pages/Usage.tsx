// The caller's own credits spent per day by kind (GET /v1/wallet/usage), for the Wallet page.
import { useState } from "react";
import { BarChart } from "../Chart";
import { ErrorText, Field, useLoad } from "../components";
import { formatCredits } from "../format";
import { usageSeries } from "../operator";
import { useSession } from "../session";

export function UsageChart() {
  const { api, wallet } = useSession();
  const [days, setDays] = useState(30);
  // Reloaded when the live balance moves (a charge just landed).
  const usage = useLoad(
    () => api.call((c) => c.GET("/v1/wallet/usage", { params: { query: { group_by: "day", days } } })),
    [days, wallet?.balance],
  );
  return (
    <section aria-labelledby="usage-title">
      <h2 id="usage-title">Your usage</h2>
      <Field label="Period">
        {(id) => (
          <select id={id} value={days} onChange={(e) => setDays(Number(e.target.value))}>
            {[7, 30, 90].map((n) => (
              <option key={n} value={n}>
                Last {n} days
              </option>
            ))}
          </select>
        )}
      </Field>
      <ErrorText error={usage.error} />
      {usage.data ? (
        <BarChart
          title="Credits spent per day"
          series={usageSeries(usage.data.days)}
          format={(v) => formatCredits(v).replace(/ credits?$/, "")}
          testId="chart-usage"
        />
      ) : null}
    </section>
  );
}
