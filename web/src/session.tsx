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
    const subscription = subscribe(
      baseUrl,
      () => api.accessToken(),
      (event) => {
        setWallet((w) => applyWalletEvent(w, event));
        listeners.current.forEach((l) => l(event));
      },
      (isLive) => {
        setLive(isLive);
        // Events missed while the stream was down: catch up from the source.
        if (isLive) refreshWallet().catch(() => {});
      },
    );
    return () => subscription.close();
  }, [api, baseUrl, user, refreshWallet]);

  const session: Session = {
    api,
    user,
    loading,
    wallet,
    live,
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
