import { ErrorText, Page, useAction, useLoad } from "../components";
import { formatTime } from "../format";
import { useSession } from "../session";

export function NotificationsPage() {
  const { api, unread, refreshUnread } = useSession();
  // Reloaded whenever one arrives live (the unread count moves).
  const list = useLoad(() => api.call((c) => c.GET("/v1/notifications", { params: { query: { page_size: 50 } } })), [unread]);
  const readAll = useAction(async () => {
    await api.call((c) => c.POST("/v1/notifications:read", { body: { all: true } }));
    await refreshUnread();
    list.reload();
  });
  const items = list.data?.notifications ?? [];
  return (
    <Page title="Notifications">
      <ErrorText error={list.error ?? readAll.error} />
      <button type="button" onClick={() => void readAll.run()} disabled={readAll.busy || unread === 0}>
        Mark all read
      </button>
      {list.data && items.length === 0 ? <p>Nothing yet.</p> : null}
      <ul className="list notifications-list">
        {items.map((n) => (
          <li key={n.id} className={n.read ? "read" : "unread"}>
            <p>
              {n.read ? null : <span className="sr-only">Unread: </span>}
              {n.text}
            </p>
            <time dateTime={n.created_at}>{formatTime(n.created_at)}</time>
          </li>
        ))}
      </ul>
    </Page>
  );
}
