// klik studio in a real browser (headless Chromium through playwright-core), against
// a running stack with its default settings: sign up → read the verification mail
// from the sandbox's sink → open its link → the balance appears (the signup bonus) →
// buy a credit pack on the Stripe sandbox's page → subscribe to a plan there and see
// it active with its allowance → see the price estimate → generate an image and see it →
// generate text and see it stream → chat: a reply grows on screen before it ends, one
// is stopped half-way, one whose stream is cut is resumed → create and publish a post
// with that image → see it in the feed → a second user sees it, image included, and
// comments, and the author is notified live → forget the password and reset it by mail.
// A screenshot of each page goes to the artifacts directory.
//
//   node tests/browser/studio.mjs http://127.0.0.1:8080 test-artifacts/browser http://127.0.0.1:8090
//
// Exits non-zero (with the failing step and a screenshot) when any step fails.
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const { chromium } = createRequire(join(root, "web", "package.json"))("playwright-core");

const [
  base = "http://127.0.0.1:8080",
  artifacts = join(root, "test-artifacts", "browser"),
  sandbox = "http://127.0.0.1:8090",
] = process.argv.slice(2);
const STEP_MS = 30_000;
mkdirSync(artifacts, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
});
const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
const page = await context.newPage();
page.setDefaultTimeout(STEP_MS);
const consoleErrors = [];
page.on("pageerror", (error) => consoleErrors.push(String(error)));
// Errors the browser logs (a failed request included), but for the step that makes one on purpose.
page.on("console", (message) => {
  const where = message.location()?.url ?? "";
  if (message.type() === "error" && !where.endsWith("/favicon.ico") && step !== "an API error is shown in words") {
    consoleErrors.push(`${step}: ${message.text()} (${where})`);
  }
});

let step = "start";
const started = Date.now();
const timings = [];
/** Name the step under way (for the failure message), and time the one before. */
function begin(name) {
  timings.push(`${step}: done at ${((Date.now() - started) / 1000).toFixed(1)} s`);
  step = name;
}

/** The first link to `path` in a mail the sink received for `to` (waits for it). */
async function mailedLink(to, path) {
  const pattern = new RegExp(`https?://[^\\s"<>]+${path}\\?token=[\\w-]+`);
  const deadline = Date.now() + STEP_MS;
  while (Date.now() < deadline) {
    const reply = await fetch(`${sandbox}/_sandbox/mail?${new URLSearchParams({ to })}`);
    if (!reply.ok) throw new Error(`the mail sink answered ${reply.status}`);
    const { messages } = await reply.json();
    for (const message of messages) {
      const found = message.text.match(pattern);
      if (found) return found[0];
    }
    await new Promise((done) => setTimeout(done, 200)); // polling the sink, with a deadline
  }
  throw new Error(`no mail to ${to} with a ${path} link`);
}

const shot = (name) => page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
const nav = (name) => page.getByRole("navigation", { name: "Main" }).getByRole("link", { name, exact: true });
const expectText = async (locator, pattern) => {
  await locator.filter({ hasText: pattern }).first().waitFor();
};

try {
  begin("sign up");
  const stamp = Date.now();
  const email = `studio-${stamp}@example.com`;
  const title = `My red square ${stamp}`; // unique: the feed is everyone's
  await page.goto(`${base}/signup`);
  await page.getByRole("heading", { name: "Create your klik account" }).waitFor();
  await shot("01-signup");
  await page.getByLabel("Display name").fill("Studio Tester");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill("correct horse battery");
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.getByRole("heading", { name: "Studio" }).waitFor();

  begin("an unverified account is asked to verify");
  const banner = page.getByRole("region", { name: "Email verification" });
  await expectText(banner, email);
  const balance = page.getByTestId("balance");
  await shot("01b-unverified");

  begin("open the verification link from the mail");
  const verifyLink = await mailedLink(email, "/verify-email");
  if (!verifyLink.startsWith(`${base}/verify-email?token=`)) throw new Error(`the link is ${verifyLink}`);
  await page.goto(verifyLink);
  await expectText(page.getByTestId("verified"), "Your email address is verified");
  await banner.waitFor({ state: "detached" });
  await shot("01c-verified");

  begin("see the balance");
  await page.getByRole("link", { name: "Go to the studio" }).click();
  await page.getByRole("heading", { name: "Studio" }).waitFor();
  await expectText(balance, /^100 credits$/);
  let before = await balance.innerText();
  await nav("Wallet").click();
  await page.getByRole("heading", { name: "Wallet" }).waitFor();
  await expectText(page.getByTestId("available"), /\d+ credits?/);
  await shot("02-wallet");

  begin("buy a credit pack on the Stripe sandbox's checkout page");
  await page.getByRole("button", { name: /^Buy 100 credits for \$5\.00$/ }).click();
  await page.getByRole("heading", { name: "Sandbox Checkout" }).waitFor();
  await shot("02b-checkout");
  await page.getByRole("button", { name: "Pay" }).click();
  await page.getByRole("heading", { name: "Wallet" }).waitFor();
  await expectText(page.getByTestId("checkout-status"), "100 credits added to your wallet");
  await expectText(balance, /^200 credits$/);
  await expectText(page.locator("tbody tr").first(), "credit pack starter");
  await shot("02c-bought");

  begin("subscribe to a plan on the Stripe sandbox's checkout page; open the billing portal");
  const plans = page.getByRole("region", { name: "Plans" });
  await expectText(plans.getByTestId("plan-basic"), "Basic: 500 credits a month");
  await expectText(plans.getByTestId("plan-premium"), "premium models");
  await expectText(plans, "You have no plan");
  await page.getByRole("button", { name: "Subscribe to basic" }).click();
  await page.getByRole("heading", { name: "Sandbox Checkout" }).waitFor();
  await page.getByRole("button", { name: "Pay" }).click();
  await page.getByRole("heading", { name: "Wallet" }).waitFor();
  // The webhooks record the subscription and grant its allowance a moment later.
  await expectText(page.getByTestId("subscription-status"), /^Active, renews on /);
  await expectText(page.getByTestId("bucket-allowance").locator("dd"), /^500 credits$/);
  await expectText(page.getByTestId("next-expiry"), "500 credits expire on");
  await expectText(balance, /^700 credits$/);
  await shot("02d-subscribed");
  await page.getByRole("button", { name: "Manage billing" }).click();
  await page.getByRole("heading", { name: "Sandbox billing portal" }).waitFor();
  await page.getByRole("link", { name: "Return" }).click(); // the return_url: the wallet
  await page.getByRole("heading", { name: "Wallet" }).waitFor();
  await expectText(page.getByTestId("subscription-status"), /^Active/);
  before = await balance.innerText();

  begin("generate an image and see it");
  await nav("Studio").click();
  await page.getByLabel("What to make").selectOption("IMAGE");
  await page.getByLabel("Prompt").fill("a red square on a white wall");
  // The price before paying: the hold, asked for as the form settles.
  await expectText(page.getByTestId("estimate"), /^This will hold \d+ credits?/);
  await shot("03a-studio-estimate");
  await page.getByRole("button", { name: "Generate" }).click();
  const image = page.getByRole("img", { name: "Generated image: a red square on a white wall" });
  await image.waitFor();
  await page.waitForFunction((img) => img.complete && img.naturalWidth > 0, await image.elementHandle());
  // The live balance moves by the charge, over SSE, without a reload.
  await page.waitForFunction(
    ([el, old]) => el.textContent !== old,
    [await balance.elementHandle(), before],
  );
  await shot("03-studio");

  begin("generate text and watch it stream in");
  await page.getByLabel("What to make").selectOption("TEXT");
  await page.getByLabel("Prompt").fill("a haiku about streams [[fault:rate=10]]");
  await page.getByRole("button", { name: "Generate" }).click();
  const textJob = page.locator(".job").filter({ hasText: "a haiku about streams" });
  await expectText(textJob.getByTestId("streaming-text"), /^Sandbox reply/);
  await expectText(textJob.locator(".status"), "Succeeded");
  await expectText(textJob.locator(".text-result"), /^Sandbox reply.*\.$/);

  begin("cancel a running generation; animate the image (its price first)");
  const slow = "a long story to cancel [[fault:rate=2]]";
  await page.getByLabel("Prompt").fill(slow);
  await page.getByRole("button", { name: "Generate" }).click();
  const slowJob = page.locator(".job").filter({ hasText: "a long story to cancel" });
  await page.getByRole("button", { name: `Cancel “${slow}”` }).click();
  await expectText(slowJob.locator(".status"), "Cancelled");
  await page.getByLabel("What to make").selectOption("IMAGE_TO_VIDEO");
  await page.getByLabel("Image to animate").selectOption({ index: 1 });
  await page.getByLabel("How it should move").fill("a slow zoom");
  await expectText(page.getByTestId("estimate"), /^This will hold \d+ credits?/);
  await page.getByLabel("What to make").selectOption("TEXT");

  begin("chat: the reply streams in with its running cost");
  await nav("Chats").click();
  await page.getByLabel("New chat title").fill("Ideas");
  await page.getByRole("button", { name: "Start chat" }).click();
  await page.getByRole("heading", { name: "Ideas" }).waitFor();
  // The sandbox streams this reply at 10 words a second (the prompt's fault marker).
  await page.getByRole("textbox", { name: "Message" }).fill("Say hello to klik [[fault:rate=10]]");
  await page.getByRole("button", { name: "Send" }).click();
  await page.locator(".message.user").filter({ hasText: "Say hello to klik" }).waitFor();
  // Part of the reply is on screen while it is still being written…
  const { partial, cost } = await (
    await page.waitForFunction(() => {
      const bubble = document.querySelector(".message.streaming.pending");
      const text = bubble?.querySelector("[data-testid=streaming-reply]")?.textContent;
      const cost = bubble?.querySelector("[data-testid=reply-cost]")?.textContent;
      return text && text.startsWith("Sandbox reply") ? { partial: text, cost } : null;
    })
  ).jsonValue();
  if (!/^\d+ tokens? · \d+ credits? so far/.test(cost)) throw new Error(`the running cost reads "${cost}"`);
  // …then the whole of it, stored in the chat, longer than what was first shown.
  const stored = page.locator(".message.assistant:not(.pending):not(.streaming)").first();
  await stored.waitFor();
  const whole = (await stored.locator("p").innerText()).trim();
  if (!whole.startsWith(partial.trim()) || whole.length <= partial.trim().length) {
    throw new Error(`the reply did not grow: first "${partial}", then "${whole}"`);
  }
  await shot("04-chat");

  begin("chat: stop a reply half-way; its text so far stays");
  await page.getByRole("textbox", { name: "Message" }).fill("Tell me a long story [[fault:rate=3]]");
  await page.getByRole("button", { name: "Send" }).click();
  await page.waitForFunction(() =>
    document.querySelector(".message.streaming.pending [data-testid=streaming-reply]")?.textContent?.startsWith("Sandbox reply"),
  );
  await page.getByRole("button", { name: "Stop" }).click();
  const kept = page.locator(".message.assistant").filter({ hasText: /You stopped this reply · \d+ credits? charged/ });
  await kept.waitFor();
  if (!(await kept.locator("p").innerText()).startsWith("Sandbox reply")) throw new Error("the stopped text is gone");
  await page.getByRole("button", { name: "Stop" }).waitFor({ state: "detached" });
  await shot("04b-chat-stopped");

  begin("chat: a reply whose connection drops is resumed with :watch and Last-Event-ID");
  // The next stream is cut after its second piece of text (the body just ends, with
  // no final `job` event): the app must pick the reply up where the cut left it.
  let cutAt = "";
  await page.route(
    "**/messages:stream",
    async (route) => {
      const response = await route.fetch();
      const kept = [];
      let pieces = 0;
      for (const block of (await response.text()).split("\n\n")) {
        if (/^event: (snapshot|delta)$/m.test(block) && pieces++ === 2) break;
        kept.push(block);
      }
      cutAt = [...kept.join("\n\n").matchAll(/^id: (\d+)$/gm)].pop()?.[1] ?? "";
      await route.fulfill({ response, body: `${kept.join("\n\n")}\n\n` });
    },
    { times: 1 },
  );
  const resumed = page.waitForRequest((r) => r.url().includes(":watch") && r.headers()["last-event-id"] !== undefined);
  const replies = await page.locator(".message.assistant:not(.pending):not(.streaming)").count();
  await page.getByRole("textbox", { name: "Message" }).fill("Tell me about rivers [[fault:rate=20]]");
  await page.getByRole("button", { name: "Send" }).click();
  const watch = await resumed;
  if (!cutAt || watch.headers()["last-event-id"] !== cutAt) {
    throw new Error(`resumed after "${watch.headers()["last-event-id"]}", the cut was after "${cutAt}"`);
  }
  const resumedReply = page.locator(".message.assistant:not(.pending):not(.streaming)").nth(replies);
  await expectText(resumedReply.locator("p"), /^Sandbox reply to “Tell me about rivers”: .+\.$/);
  if (await page.getByRole("alert").count()) throw new Error(await page.getByRole("alert").first().innerText());

  begin("create and publish a post with the image");
  await nav("My posts").click();
  await page.getByLabel("Title").fill(title);
  await page.getByLabel("Text").fill("Made in klik studio");
  const attach = page.getByRole("checkbox").first();
  await attach.waitFor();
  await attach.check();
  await page.getByRole("button", { name: "Save draft" }).click();
  await page.getByRole("button", { name: `Publish “${title}”` }).click();
  await expectText(page.locator(".status"), "Published");
  await shot("05-posts");

  begin("see it in the feed");
  await nav("Feed").click();
  const post = page.getByRole("article", { name: title });
  await post.waitFor();
  const inFeed = post.getByRole("img", { name: `Image in “${title}”` });
  await inFeed.waitFor();
  await page.waitForFunction((img) => img.complete && img.naturalWidth > 0, await inFeed.elementHandle());
  await shot("06-feed");

  begin("a second user sees the post with its image and comments on it; its author's notification appears live");
  const other = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page2 = await other.newPage();
  page2.setDefaultTimeout(STEP_MS);
  page2.on("pageerror", (error) => consoleErrors.push(`second user: ${error}`));
  const email2 = `studio-b-${stamp}@example.com`;
  await page2.goto(`${base}/signup`);
  await page2.getByLabel("Display name").fill("Second Tester");
  await page2.getByLabel("Email").fill(email2);
  await page2.getByLabel("Password").fill("correct horse battery");
  await page2.getByRole("button", { name: "Sign up" }).click();
  await page2.getByRole("heading", { name: "Studio" }).waitFor();
  await page2.goto(await mailedLink(email2, "/verify-email"));
  await expectText(page2.getByTestId("verified"), "Your email address is verified");
  await page2.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Feed", exact: true }).click();
  const theirPost = page2.getByRole("article", { name: title });
  // A reader sees the post's image too: a post's media come with it (Post.assets).
  const theirImage = theirPost.getByRole("img", { name: `Image in “${title}”` });
  await theirImage.waitFor();
  await page2.waitForFunction((img) => img.complete && img.naturalWidth > 0, await theirImage.elementHandle());
  await theirPost.getByText(/^Comments \(\d+\)$/).click();
  await theirPost.getByLabel(`Comment on “${title}”`).fill("Lovely red square!");
  await theirPost.getByRole("button", { name: "Post comment" }).click();
  await expectText(theirPost.locator(".comments li"), "Second Tester: Lovely red square!");
  await page2.screenshot({ path: join(artifacts, "06c-second-user-comment.png"), fullPage: true });
  // The author, still on the feed, is told at once (SSE), without a reload.
  await expectText(page.getByTestId("notice"), /^New: .*comment/i);
  await expectText(page.getByRole("link", { name: /^Notifications \d+ unread$/ }), "Notifications");
  await shot("06d-notified");
  await page.getByRole("link", { name: /^Notifications/ }).click();
  await page.getByRole("heading", { name: "Notifications" }).waitFor();
  await expectText(page.locator(".notifications-list li.unread"), /comment/i);
  await page.getByRole("button", { name: "Mark all read" }).click();
  await page.getByRole("link", { name: /^Notifications$/ }).waitFor();
  await other.close();
  await nav("Feed").click();
  await post.waitFor();

  begin("the layout folds for a phone");
  await page.setViewportSize({ width: 390, height: 844 });
  await post.waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 1) throw new Error(`the page is ${overflow}px wider than a phone screen`);
  await shot("06b-feed-phone");
  for (const [name, heading, file] of [
    ["Wallet", "Wallet", "02e-wallet-phone"],
    ["Studio", "Studio", "03b-studio-phone"],
  ]) {
    await nav(name).click();
    await page.getByRole("heading", { name: heading, exact: true }).waitFor();
    await page.getByTestId(name === "Wallet" ? "subscription" : "estimate").waitFor({ state: "attached" });
    const wider = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (wider > 1) throw new Error(`the ${name} page is ${wider}px wider than a phone screen`);
    await shot(file);
  }
  await page.setViewportSize({ width: 1200, height: 900 });

  begin("forget the password and reset it by mail");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in to klik" }).waitFor();
  await page.getByRole("link", { name: "Forgot your password?" }).click();
  await page.getByRole("heading", { name: "Forgot your password?" }).waitFor();
  await page.getByLabel("Email").fill(email);
  await page.getByRole("button", { name: "Mail me a link" }).click();
  await expectText(page.locator(".status"), "is on its way");
  const resetLink = await mailedLink(email, "/reset-password");
  await page.goto(resetLink);
  await page.getByRole("heading", { name: "Choose a new password" }).waitFor();
  await page.getByLabel("New password", { exact: true }).fill("a brand new passphrase");
  await page.getByRole("button", { name: "Set the new password" }).click();
  await expectText(page.locator(".status"), "Your password is changed");
  await shot("07a-password-reset");
  await page.getByRole("link", { name: "Sign in" }).click();
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill("a brand new passphrase");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Studio" }).waitFor();
  await expectText(balance, /\d+ credits?/);

  begin("an API error is shown in words");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in to klik" }).waitFor();
  // By keyboard alone, on a fresh load: the skip link first, then the fields in order.
  await page.goto(`${base}/login`);
  await page.getByRole("heading", { name: "Sign in to klik" }).waitFor();
  await page.keyboard.press("Tab");
  const first = await page.evaluate(() => document.activeElement?.textContent);
  if (first !== "Skip to content") throw new Error(`the first Tab stop is "${first}"`);
  await page.getByLabel("Email").focus();
  await page.keyboard.type(email);
  await page.keyboard.press("Tab");
  await page.keyboard.type("wrong password!");
  await page.keyboard.press("Enter");
  await page.getByRole("alert").waitFor();
  await shot("07-login-error");
  if (consoleErrors.length) throw new Error(`errors in the page: ${consoleErrors.join("; ")}`);
  begin("done");
  console.log(`klik studio: every step passed; screenshots in ${artifacts}\n${timings.join("\n")}`);
} catch (error) {
  await shot("failed").catch(() => {});
  console.error(`klik studio failed at "${step}": ${error?.message ?? error}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
