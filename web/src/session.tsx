// Who is signed in, their live balance, and the event stream every page can listen to.
import { createContext, type ReactNode, useCallback, useContext, useEffect, useMemo, useRef, useState } from "react";
import { KlikClient, localTokens, type User, type Wallet } from "./api/client";
import { type KlikEvent, subscribe } from "./api/events";

export interface Session {
  api: KlikClient;
  user: User | null;
  loading: boolean;
  wallet: Wallet | null;
  live: boolean;
  /** Unread notifications, and the newest one that arrived live (its words). */
  unread: number;
  notice: string | null;
  refreshUnread: () => Promise<void>;
  // Plain functions (not methods): pages take them out of the session and call them.
  refreshUser: () => Promise<void>;
  refreshWallet: () => Promise<void>;
  signOut: () => Promise<void>;
  onEvent: (listener: (event: KlikEvent) => void) => () => void;
}

const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession outside SessionProvider");
  return session;
}

/** The words of a live `content.notification.created` event; null for other events. */
export function noticeOf(event: KlikEvent): string | null {
  if (event.kind !== "other" || event.type !== "content.notification.created") return null;
  const text = (event.envelope.payload as { text?: unknown }).text;
  return typeof text === "string" && text ? text : "You have a new notification.";
}

/** Apply a wallet.changed event to the wallet shown (events only move forward). */
export function applyWalletEvent(wallet: Wallet | null, event: KlikEvent): Wallet | null {
  if (event.kind !== "wallet") return wallet;
  return {
    ...(wallet ?? {}),
    user_id: event.wallet.user_id,
    balance: event.wallet.balance,
    held: event.wallet.held,
    available: event.wallet.available,
    updated_at: event.envelope.occurred_at ?? wallet?.updated_at,
  };
}

export function SessionProvider({ children, baseUrl = "" }: { children: ReactNode; baseUrl?: string }) {
  const api = useMemo(() => new KlikClient(baseUrl, localTokens()), [baseUrl]);
  const [user, setUser] = useState<User | null>(null);
  const [loading, setLoading] = useState(true);
  const [wallet, setWallet] = useState<Wallet | null>(null);
  const [live, setLive] = useState(false);
  const [unread, setUnread] = useState(0);
  const [notice, setNotice] = useState<string | null>(null);
  const listeners = useRef(new Set<(event: KlikEvent) => void>());

  const refreshUser = useCallback(async () => {
    if (!api.tokens.get()) {
      setUser(null);
      setLoading(false);
      return;
    }
    try {
      const me = await api.call((c) => c.GET("/v1/auth/me"));
      setUser(me);
    } catch {
      setUser(null);
    } finally {
      setLoading(false);
    }
  }, [api]);

  const refreshWallet = useCallback(async () => {
    setWallet(await api.call((c) => c.GET("/v1/wallet")));
  }, [api]);

  const refreshUnread = useCallback(async () => {
    const page = await api.call((c) => c.GET("/v1/notifications", { params: { query: { page_size: 1 } } }));
    setUnread(Number(page.unread_count ?? 0));
  }, [api]);

  useEffect(() => {
    api.onSignedOut = () => {
      setUser(null);
      setWallet(null);
    };
    void refreshUser();
  }, [api, refreshUser]);

  useEffect(() => {
    if (!user) return;
    refreshWallet().catch(() => {});
    refreshUnread().catch(() => {});
    const subscription = subscribe(
      baseUrl,
      () => api.accessToken(),
      (event) => {
        setWallet((w) => applyWalletEvent(w, event));
        const words = noticeOf(event);
        if (words) {
          setNotice(words);
          setUnread((n) => n + 1);
        }
        listeners.current.forEach((l) => l(event));
      },
      (isLive) => {
        setLive(isLive);
        // Events missed while the stream was down: catch up from the source.
        if (isLive) {
          refreshWallet().catch(() => {});
          refreshUnread().catch(() => {});
        }
      },
    );
    return () => subscription.close();
  }, [api, baseUrl, user, refreshWallet, refreshUnread]);

  const session: Session = {
    api,
    user,
    loading,
    wallet,
    live,
    unread,
    notice,
    refreshUnread,
    refreshUser,
    refreshWallet,
    signOut: async () => {
      await api.logout().catch(() => {});
      setUser(null);
    },
    onEvent: (listener) => {
      listeners.current.add(listener);
      return () => listeners.current.delete(listener);
    },
  };
  return <SessionContext.Provider value={session}>{children}</SessionContext.Provider>;
}
