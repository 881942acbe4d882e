import { type ReactElement, useEffect, useRef } from "react";
import { formatCredits } from "./format";
import {
  AccountPage,
  Avatar,
  PasswordResetConfirmPage,
  PasswordResetRequestPage,
  VerifyBanner,
  VerifyEmailPage,
} from "./pages/Account";
import { AdminPage } from "./pages/Admin";
import { AssetsPage } from "./pages/Assets";
import { AssistantsPage } from "./pages/Assistants";
import { AuthPage } from "./pages/Auth";
import { ChatsPage } from "./pages/Chats";
import { FeedPage } from "./pages/Feed";
import { LessonsPage } from "./pages/Lessons";
import { NotificationsPage } from "./pages/Notifications";
import { OperatorPage } from "./pages/Operator";
import { PostsPage } from "./pages/Posts";
import { SearchPage } from "./pages/Search";
import { StudioPage } from "./pages/Studio";
import { WalletPage } from "./pages/Wallet";
import { Link, navigate, usePath } from "./router";
import { isOperator } from "./operator";
import { match, SECTIONS } from "./routes";
import { useSession } from "./session";

const PAGES: Record<string, (props: { rest: string[] }) => ReactElement> = {
  login: () => <AuthPage mode="login" />,
  signup: () => <AuthPage mode="signup" />,
  "verify-email": () => <VerifyEmailPage />,
  "password-reset": () => <PasswordResetRequestPage />,
  "reset-password": () => <PasswordResetConfirmPage />,
  studio: () => <StudioPage />,
  chats: ({ rest }) => <ChatsPage chatId={rest[0]} />,
  assistants: () => <AssistantsPage />,
  lessons: () => <LessonsPage />,
  posts: () => <PostsPage />,
  feed: () => <FeedPage />,
  assets: () => <AssetsPage />,
  search: () => <SearchPage />,
  wallet: () => <WalletPage />,
  admin: () => <AdminPage />,
  operator: ({ rest }) => <OperatorPage rest={rest} />,
  notifications: () => <NotificationsPage />,
  account: () => <AccountPage />,
};

export function App() {
  const path = usePath();
  const session = useSession();
  const { section, rest } = match(path);

  useEffect(() => {
    if (session.loading) return;
    if (!section) navigate(session.user ? "/studio" : "/login", true);
    else if (section.signedIn === true && !session.user) navigate("/login", true);
    else if (section.signedIn === false && session.user) navigate("/studio", true);
  }, [section, session.loading, session.user]);

  // After a navigation (not the first load), focus moves to the new page's title so
  // screen readers announce it and Tab continues from there.
  const firstPath = useRef(path);
  useEffect(() => {
    if (path !== firstPath.current) document.getElementById("page-title")?.focus();
    firstPath.current = "";
  }, [path]);

  const Current = section ? PAGES[section.path] : undefined;
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <Link to="/" className="brand">
          klik studio
        </Link>
        {session.user ? (
          <>
            <nav aria-label="Main">
              <ul>
                {SECTIONS.filter(
                  (s) =>
                    s.nav ||
                    (s.path === "admin" && session.user?.role === "admin") ||
                    (s.path === "operator" && isOperator(session.user?.role)),
                ).map(
                  (s) => (
                    <li key={s.path}>
                      <Link to={`/${s.path}`} aria-current={section?.path === s.path ? "page" : undefined}>
                        {s.title}
                      </Link>
                    </li>
                  ),
                )}
              </ul>
            </nav>
            <div className="account">
              <Link
                to="/notifications"
                className="notifications"
                aria-current={section?.path === "notifications" ? "page" : undefined}
              >
                Notifications{session.unread ? <span className="badge"> {session.unread}</span> : null}
                <span className="sr-only">{session.unread ? " unread" : ""}</span>
              </Link>
              <Link to="/account" className="me" aria-current={section?.path === "account" ? "page" : undefined}>
                <Avatar user={session.user} />
                Account
              </Link>
              <Link to="/wallet" className="balance" aria-live="polite" data-testid="balance">
                {session.wallet ? formatCredits(session.wallet.available) : "…"}
              </Link>
              <span className={session.live ? "live on" : "live"} title={session.live ? "Live updates on" : "Reconnecting"}>
                <span className="sr-only">{session.live ? "Live updates on" : "Live updates reconnecting"}</span>
              </span>
              <button type="button" onClick={() => void session.signOut()}>
                Sign out
              </button>
            </div>
          </>
        ) : null}
      </header>
      {session.user ? (
        <p className="notice" role="status" data-testid="notice">
          {session.notice ? `New: ${session.notice}` : ""}
        </p>
      ) : null}
      <main id="main">
        {!session.loading && section?.path !== "verify-email" ? <VerifyBanner /> : null}
        {session.loading ? <p aria-busy="true">Loading…</p> : Current ? <Current rest={rest} /> : null}
      </main>
    </>
  );
}
