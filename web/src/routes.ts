// The app's sections: each is a page module and a top-level path. The gateway
// answers index.html for these paths (web/public/routes.json lists the same; a test
// keeps them equal), so a reload or a shared link opens the right page.
export interface Section {
  path: string; // first path segment
  title: string;
  nav: boolean; // shown in the navigation when signed in
  signedIn: boolean | null; // needs an account (true), no account (false), either (null)
}

export const SECTIONS: readonly Section[] = [
  { path: "login", title: "Sign in", nav: false, signedIn: false },
  { path: "signup", title: "Sign up", nav: false, signedIn: false },
  { path: "verify-email", title: "Verify your email", nav: false, signedIn: null },
  { path: "password-reset", title: "Forgot your password?", nav: false, signedIn: null },
  // The page auth's reset mail links to (services/auth/recovery.py RESET_PATH).
  { path: "reset-password", title: "Choose a new password", nav: false, signedIn: null },
  { path: "studio", title: "Studio", nav: true, signedIn: true },
  { path: "chats", title: "Chats", nav: true, signedIn: true },
  { path: "assistants", title: "Assistants", nav: true, signedIn: true },
  { path: "lessons", title: "Lessons", nav: true, signedIn: true },
  { path: "posts", title: "My posts", nav: true, signedIn: true },
  { path: "feed", title: "Feed", nav: true, signedIn: true },
  { path: "assets", title: "Assets", nav: true, signedIn: true },
  { path: "search", title: "Search", nav: true, signedIn: true },
  { path: "wallet", title: "Wallet", nav: true, signedIn: true },
  { path: "notifications", title: "Notifications", nav: false, signedIn: true },
  // Your profile picture (linked from the header, beside Notifications).
  { path: "account", title: "Account", nav: false, signedIn: true },
  { path: "admin", title: "Admin", nav: false, signedIn: true },
  // Moderators and admins (shown in the navigation to them: App.tsx).
  { path: "operator", title: "Operator", nav: false, signedIn: true },
];

/** The section a path belongs to and the rest of it: "/chats/42" → chats, ["42"]. */
export function match(pathname: string): { section: Section | null; rest: string[] } {
  const [first = "", ...rest] = pathname.split("/").filter(Boolean);
  return { section: SECTIONS.find((s) => s.path === first) ?? null, rest };
}
