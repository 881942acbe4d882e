import { type FormEvent, useEffect, useState } from "react";
import type { Chat } from "../api/client";
import { ErrorText, Field, newKey, Page, useAction, useLoad } from "../components";
import { formatTime } from "../format";
import { Link, navigate } from "../router";
import { useSession } from "../session";

/** Whether the last user message still waits for its answer. */
export function awaitingReply(chat: Chat | null): boolean {
  const last = chat?.messages?.at(-1);
  return last?.role === "user";
}

export function ChatsPage({ chatId }: { chatId?: string }) {
  const { api } = useSession();
  const chats = useLoad(() => api.call((c) => c.GET("/v1/chats")), [chatId]);
  const [title, setTitle] = useState("");
  const create = useAction(async () => {
    const chat = await api.call((c) => c.POST("/v1/chats", { body: { title: title || "New chat" } }));
    setTitle("");
    navigate(`/chats/${chat.id}`);
  });
  return (
    <Page title="Chats">
      <div className="split">
        <aside aria-label="Your chats">
          <form
            className="card"
            onSubmit={(e: FormEvent) => {
              e.preventDefault();
              void create.run();
            }}
          >
            <Field label="New chat title">
              {(id) => <input id={id} value={title} onChange={(e) => setTitle(e.target.value)} />}
            </Field>
            <ErrorText error={create.error} />
            <button type="submit" disabled={create.busy}>
              Start chat
            </button>
          </form>
          <ErrorText error={chats.error} />
          <ul className="list">
            {(chats.data?.chats ?? []).map((chat) => (
              <li key={chat.id}>
                <Link to={`/chats/${chat.id}`} aria-current={chat.id === chatId ? "page" : undefined}>
                  {chat.title || "Untitled chat"}
                </Link>
              </li>
            ))}
          </ul>
        </aside>
        {chatId ? <ChatView chatId={chatId} /> : <p>Pick a chat or start one.</p>}
      </div>
    </Page>
  );
}

function ChatView({ chatId }: { chatId: string }) {
  const { api, onEvent } = useSession();
  const chat = useLoad(() => api.call((c) => c.GET("/v1/chats/{chat_id}", { params: { path: { chat_id: chatId } } })), [chatId]);
  const [text, setText] = useState("");
  const waiting = awaitingReply(chat.data);
  // The reply lands when its job succeeds: reload on job events, and now and then while waiting.
  useEffect(() => onEvent((e) => e.kind === "job" && e.job.kind === "CHAT" && chat.reload()), [onEvent, chat]);
  useEffect(() => {
    if (!waiting) return;
    const timer = setTimeout(chat.reload, 1500);
    return () => clearTimeout(timer);
  }, [waiting, chat]);
  const send = useAction(async () => {
    const content = text;
    await api.call((c) =>
      c.POST("/v1/chats/{chat_id}/messages", {
        params: { path: { chat_id: chatId } },
        body: { content, idempotency_key: newKey() },
      }),
    );
    setText("");
    chat.reload();
  });
  return (
    <div className="chat">
      <h2>{chat.data?.title || "Chat"}</h2>
      <ErrorText error={chat.error} />
      <ol className="messages" aria-live="polite" aria-label="Messages">
        {(chat.data?.messages ?? []).map((m) => (
          <li key={m.id} className={`message ${m.role}`}>
            <span className="sr-only">{m.role === "user" ? "You" : "Assistant"}: </span>
            <p>{m.content}</p>
            <time dateTime={m.created_at}>{formatTime(m.created_at)}</time>
          </li>
        ))}
        {waiting ? (
          <li className="message assistant pending" aria-busy="true">
            Writing a reply…
          </li>
        ) : null}
      </ol>
      <form
        onSubmit={(e: FormEvent) => {
          e.preventDefault();
          void send.run();
        }}
      >
        <Field label="Message">
          {(id) => <textarea id={id} rows={2} required value={text} onChange={(e) => setText(e.target.value)} />}
        </Field>
        <ErrorText error={send.error} />
        <button type="submit" disabled={send.busy || !text.trim()}>
          Send
        </button>
      </form>
    </div>
  );
}
