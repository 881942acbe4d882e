import { type FormEvent, useEffect, useRef, useState } from "react";
import type { Chat } from "../api/client";
import { initialJobStream, type JobStreamState, streamChatReply, watchJob } from "../api/jobStream";
import { ErrorText, Field, newKey, Page, useAction, useLoad } from "../components";
import { formatCredits, formatTime } from "../format";
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
        {chatId ? (
          <ChatView chatId={chatId} onChanged={chats.reload} />
        ) : (
          <p>
            Pick a chat or start one — or <Link to="/assistants">start one with an assistant</Link>.
          </p>
        )}
      </div>
    </Page>
  );
}

/** Whether the chat holds the assistant's reply written by `jobId`. */
export function hasReply(chat: Chat | null, jobId: string): boolean {
  return !!jobId && (chat?.messages ?? []).some((m) => m.role === "assistant" && m.job_id === jobId);
}

/** The running figures of a reply in words: "12 tokens · 1 credit so far". */
export function replyProgress(reply: JobStreamState): string {
  const tokens = `${reply.tokens} ${reply.tokens === "1" ? "token" : "tokens"}`;
  const status = reply.job?.status;
  if (status === "CANCELLED") return `Stopped · ${tokens} · ${formatCredits(reply.cost)} charged`;
  if (status === "FAILED") return `Failed · ${formatCredits(reply.cost)} charged`;
  if (reply.done) return `${tokens} · ${formatCredits(reply.cost)}`;
  return `${tokens} · ${formatCredits(reply.cost)} so far`;
}

/** The chat's title with "Rename" and "Delete" (after a confirm). */
function ChatTitle({ chat, onRenamed, onChanged }: { chat: Chat | null; onRenamed: (c: Chat) => void; onChanged: () => void }) {
  const { api } = useSession();
  const [draft, setDraft] = useState<string | null>(null);
  const chatId = chat?.id ?? "";
  const rename = useAction(async () => {
    const renamed = await api.call((c) =>
      c.PATCH("/v1/chats/{chat_id}", { params: { path: { chat_id: chatId } }, body: { title: (draft ?? "").trim() } }),
    );
    setDraft(null);
    onRenamed(renamed);
    onChanged();
  });
  const remove = useAction(async () => {
    if (!window.confirm(`Delete the chat “${chat?.title || "Untitled chat"}” and all its messages? This cannot be undone.`)) return;
    await api.call((c) => c.DELETE("/v1/chats/{chat_id}", { params: { path: { chat_id: chatId } } }));
    onChanged();
    navigate("/chats");
  });
  if (draft !== null) {
    return (
      <form
        className="actions"
        onSubmit={(e: FormEvent) => {
          e.preventDefault();
          void rename.run();
        }}
      >
        <Field label="Chat title">
          {(id) => <input id={id} autoFocus maxLength={200} value={draft} onChange={(e) => setDraft(e.target.value)} />}
        </Field>
        <button type="submit" disabled={rename.busy}>
          Save title
        </button>
        <button type="button" className="secondary" onClick={() => (setDraft(null), rename.setError(null))}>
          Cancel
        </button>
        <ErrorText error={rename.error} />
      </form>
    );
  }
  return (
    <div className="actions">
      <h2>{chat?.title || "Chat"}</h2>
      {chat ? (
        <>
          <button type="button" className="secondary" onClick={() => setDraft(chat.title ?? "")}>
            Rename<span className="sr-only"> this chat</span>
          </button>
          <button type="button" className="danger" onClick={() => void remove.run()} disabled={remove.busy}>
            Delete<span className="sr-only"> this chat</span>
          </button>
          {chat.assistant_id ? <span className="hint">with an assistant</span> : null}
        </>
      ) : null}
      <ErrorText error={remove.error} />
    </div>
  );
}

function ChatView({ chatId, onChanged }: { chatId: string; onChanged: () => void }) {
  const { api, onEvent } = useSession();
  const chat = useLoad(() => api.call((c) => c.GET("/v1/chats/{chat_id}", { params: { path: { chat_id: chatId } } })), [chatId]);
  const [text, setText] = useState("");
  // The reply being written (streamed), the message on its way, and replies stopped
  // here (the chat keeps only a note for those; the text so far is shown from the stream).
  const [reply, setReply] = useState<JobStreamState | null>(null);
  const [outgoing, setOutgoing] = useState<string | null>(null);
  const [reconnecting, setReconnecting] = useState(false);
  const [stopped, setStopped] = useState<Record<string, JobStreamState>>({});
  const streaming = useRef<AbortController | null>(null);
  const latest = useRef<JobStreamState | null>(null);
  const messages = chat.data?.messages ?? [];
  const waiting = awaitingReply(chat.data);
  const showReply = reply !== null && !hasReply(chat.data, reply.jobId);

  // Leaving the chat stops reading (the reply goes on being written and is stored).
  useEffect(() => () => streaming.current?.abort(), [chatId]);
  // The reply is stored when its job ends: reload on job events, and now and then until it is there.
  useEffect(() => onEvent((e) => e.kind === "job" && e.job.kind === "CHAT" && chat.reload()), [onEvent, chat]);
  useEffect(() => {
    if (!waiting || (reply && !reply.done)) return;
    const timer = setTimeout(chat.reload, 1500);
    return () => clearTimeout(timer);
  }, [waiting, reply, chat]);

  const follow = async (run: (signal: AbortSignal) => Promise<JobStreamState>) => {
    const controller = new AbortController();
    streaming.current?.abort();
    streaming.current = controller;
    try {
      const final = await run(controller.signal);
      if (final.job?.status === "CANCELLED") setStopped((now) => ({ ...now, [final.jobId]: final }));
    } finally {
      if (streaming.current === controller) streaming.current = null;
      setReconnecting(false);
      chat.reload();
    }
  };
  const handlers = (signal: AbortSignal) => ({
    signal,
    onUpdate: (state: JobStreamState) => {
      latest.current = state;
      setReconnecting(false);
      setReply(state);
    },
    onReconnect: () => setReconnecting(true),
  });

  const send = useAction(async () => {
    const content = text;
    setText("");
    setOutgoing(content);
    setReply(null);
    latest.current = initialJobStream();
    try {
      await follow((signal) => streamChatReply(api, chatId, content, newKey(), handlers(signal)));
    } catch (error) {
      if (!latest.current?.jobId) setText(content); // not sent: give the words back
      throw error;
    } finally {
      setOutgoing(null);
    }
  });

  // A reply still being written when the chat opens (a reload, another tab): follow it.
  const lastJob = waiting ? (messages.at(-1)?.job_id ?? "") : "";
  const watch = useAction(async (jobId: string) => {
    setReply(null);
    await follow((signal) => watchJob(api, jobId, handlers(signal)));
  });
  useEffect(() => {
    if (lastJob && !streaming.current && !send.busy && reply?.jobId !== lastJob) void watch.run(lastJob);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [lastJob]);

  const stop = useAction(async () => {
    if (!reply?.jobId) return;
    await api.call((c) => c.POST("/v1/generations/{job_id}:cancel", { params: { path: { job_id: reply.jobId } } }));
  });

  const sentShown = reply?.sent?.id && !messages.some((m) => m.id === reply.sent?.id);
  const writing = reply !== null && !reply.done;
  return (
    <div className="chat">
      <ChatTitle
        key={chatId}
        chat={chat.data}
        onChanged={onChanged}
        onRenamed={(renamed) => chat.setData((now) => (now ? { ...now, title: renamed.title } : now))}
      />
      <ErrorText error={chat.error} />
      <ol className="messages" aria-live="polite" aria-label="Messages">
        {messages.map((m) => (
          <li key={m.id} className={`message ${m.role}`}>
            <span className="sr-only">{m.role === "user" ? "You" : "Assistant"}: </span>
            {m.role === "assistant" && m.job_id && stopped[m.job_id] ? (
              <>
                <p>{stopped[m.job_id]!.text}</p>
                <small className="note">
                  You stopped this reply · {formatCredits(stopped[m.job_id]!.cost)} charged
                </small>
              </>
            ) : (
              <p>{m.content}</p>
            )}
            <time dateTime={m.created_at}>{formatTime(m.created_at)}</time>
          </li>
        ))}
        {outgoing !== null && !sentShown && !reply?.sent ? (
          <li className="message user pending">
            <span className="sr-only">You: </span>
            <p>{outgoing}</p>
          </li>
        ) : null}
        {sentShown && reply?.sent ? (
          <li className="message user">
            <span className="sr-only">You: </span>
            <p>{reply.sent.content}</p>
            <time dateTime={reply.sent.created_at}>{formatTime(reply.sent.created_at)}</time>
          </li>
        ) : null}
        {showReply && reply ? (
          <li className={`message assistant streaming${reply.done ? "" : " pending"}`} aria-busy={!reply.done}>
            <span className="sr-only">Assistant: </span>
            <p data-testid="streaming-reply">{reply.text || (reply.done ? "" : "Writing a reply…")}</p>
            <small className="note" data-testid="reply-cost">
              {replyProgress(reply)}
              {reconnecting ? " · reconnecting…" : ""}
            </small>
          </li>
        ) : waiting && !outgoing ? (
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
        <ErrorText error={send.error ?? watch.error ?? stop.error} />
        <div className="row">
          <button type="submit" disabled={send.busy || writing || !text.trim()}>
            Send
          </button>
          {writing && reply?.jobId ? (
            <button type="button" className="secondary" onClick={() => void stop.run()} disabled={stop.busy}>
              Stop
            </button>
          ) : null}
        </div>
      </form>
    </div>
  );
}
