import { useState } from "react";
import { ErrorText, Page, useAction, useLoad } from "../components";
import { formatTime } from "../format";
import { useSession } from "../session";

const ROLES = ["user", "premium", "moderator", "admin"];

export function AdminPage() {
  const { api } = useSession();
  const users = useLoad(() => api.call((c) => c.GET("/v1/admin/users", { params: { query: { page_size: 100 } } })), []);
  const [amounts, setAmounts] = useState<Record<string, string>>({});
  const [done, setDone] = useState("");
  const setRole = useAction(async (userId: string, role: string) => {
    await api.call((c) => c.POST("/v1/admin/users/{user_id}/role", { params: { path: { user_id: userId } }, body: { role } }));
    setDone(`Role changed to ${role}.`);
    users.reload();
  });
  const grant = useAction(async (userId: string) => {
    const amount = amounts[userId] ?? "";
    await api.call((c) =>
      c.POST("/v1/admin/wallets/{user_id}/credits", {
        params: { path: { user_id: userId } },
        body: { amount, reason: "granted in klik studio", idempotency_key: crypto.randomUUID() },
      }),
    );
    setDone(`Granted ${amount} credits.`);
  });
  return (
    <Page title="Admin">
      <ErrorText error={users.error ?? setRole.error ?? grant.error} />
      <p role="status">{done}</p>
      <table>
        <caption className="sr-only">Accounts</caption>
        <thead>
          <tr>
            <th scope="col">Account</th>
            <th scope="col">Since</th>
            <th scope="col">Role</th>
            <th scope="col">Grant credits</th>
          </tr>
        </thead>
        <tbody>
          {(users.data?.users ?? []).map((u) => (
            <tr key={u.id}>
              <td>
                {u.display_name} <span className="hint">{u.email}</span>
              </td>
              <td>{formatTime(u.created_at)}</td>
              <td>
                <select aria-label={`Role of ${u.email}`} value={u.role} onChange={(e) => void setRole.run(u.id!, e.target.value)}>
                  {ROLES.map((r) => (
                    <option key={r}>{r}</option>
                  ))}
                </select>
              </td>
              <td>
                <input
                  aria-label={`Credits to grant ${u.email}`}
                  inputMode="numeric"
                  size={6}
                  value={amounts[u.id!] ?? ""}
                  onChange={(e) => setAmounts({ ...amounts, [u.id!]: e.target.value })}
                />
                <button type="button" onClick={() => void grant.run(u.id!)}>
                  Grant
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </Page>
  );
}
