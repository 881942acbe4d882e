// klik studio's operator pages in a real browser (headless Chromium through
// playwright-core), against a running stack whose KLIK_ADMIN_EMAILS names the admin.
// Set up over the public API: an author generates an image (a charge, a job), writes
// and publishes a post, and a reader reports it. Then, in the browser, the admin
// signs in → opens the dashboard and sees non-empty charts (credits spent, jobs,
// active users) → searches the users (on the server) and opens the author's wallet →
// opens the report queue and hides the reported post → sees the providers; the post
// is then gone from the public feed. A screenshot of each operator page goes to the artifacts directory.
//
//   node tests/browser/operator.mjs http://127.0.0.1:8080 test-artifacts/operator admin@example.com
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
  artifacts = join(root, "test-artifacts", "operator"),
  adminEmail = "admin@example.com",
] = process.argv.slice(2);
const PASSWORD = "correct horse battery";
const STEP_MS = 30_000;
mkdirSync(artifacts, { recursive: true });

/** One public API call; its JSON, or an Error with the API's words. */
async function api(method, path, { token, body } = {}) {
  const reply = await fetch(`${base}${path}`, {
    method,
    headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await reply.json().catch(() => ({}));
  if (!reply.ok) throw new Error(`${method} ${path}: ${reply.status} ${JSON.stringify(data)}`);
  return data;
}

async function account(email, name) {
  await api("POST", "/v1/auth/register", { body: { email, password: PASSWORD, display_name: name } });
  return (await api("POST", "/v1/auth/login", { body: { email, password: PASSWORD } })).access_token;
}

/** Wait for `check` to give something truthy, polling with a deadline. */
async function until(what, check) {
  const deadline = Date.now() + STEP_MS;
  while (Date.now() < deadline) {
    const found = await check();
    if (found) return found;
    await new Promise((done) => setTimeout(done, 250)); // polling the API, with a deadline
  }
  throw new Error(`timed out waiting for ${what}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
});
const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
const page = await context.newPage();
page.setDefaultTimeout(STEP_MS);
const consoleErrors = [];
page.on("pageerror", (error) => consoleErrors.push(String(error)));
page.on("console", (message) => {
  // The browser's own favicon request is not the app's (the app has no icon).
  const where = message.location().url;
  if (message.type() === "error" && !where.endsWith("/favicon.ico")) consoleErrors.push(`${message.text()} (${where})`);
});

let step = "start";
const shot = (name) => page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
const operatorNav = (name) => page.getByRole("navigation", { name: "Operator" }).getByRole("link", { name, exact: true });
/** The total a chart shows (its data-total), once it is drawn. */
const chartTotal = async (testId) => {
  const chart = page.getByTestId(testId).first();
  await chart.waitFor();
  return Number(await chart.getAttribute("data-total"));
};

try {
  step = "set up over the API: a charged job, a published post, a report";
  const stamp = Date.now();
  const author = await account(`author-${stamp}@example.com`, "Operator Test Author");
  const reader = await account(`reader-${stamp}@example.com`, "Operator Test Reader");
  const job = await api("POST", "/v1/generations", {
    token: author,
    body: { kind: "IMAGE", prompt: "a green triangle", idempotency_key: `op-${stamp}` },
  });
  await until("the image job to succeed", async () => {
    const now = await api("GET", `/v1/generations/${job.id}`, { token: author });
    if (now.status === "FAILED") throw new Error(`the job failed: ${JSON.stringify(now.error)}`);
    return now.status === "SUCCEEDED";
  });
  const title = `Reported post ${stamp}`;
  const post = await api("POST", "/v1/posts", { token: author, body: { title, body: "Please look at this.", visibility: "public" } });
  await api("POST", `/v1/posts/${post.id}:publish`, { token: author, body: {} });
  await api("POST", "/v1/reports", { token: reader, body: { target_kind: "post", target_id: post.id, reason: "spam" } });

  step = "the author sees their own usage on the Wallet page";
  await page.goto(`${base}/login`);
  await page.getByLabel("Email").fill(`author-${stamp}@example.com`);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Studio" }).waitFor();
  if ((await page.getByRole("link", { name: "Operator", exact: true }).count()) !== 0) {
    throw new Error("a user is offered the operator pages");
  }
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Wallet", exact: true }).click();
  await page.getByRole("heading", { name: "Your usage" }).waitFor();
  const used = await chartTotal("chart-usage");
  if (!(used >= 5)) throw new Error(`the usage chart shows ${used} credits, not the image's 5`);
  await page.getByTestId("chart-usage").scrollIntoViewIfNeeded();
  await shot("00-wallet-usage");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Studio", exact: true }).click();
  await page.getByRole("heading", { name: "Studio" }).waitFor();
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in to klik" }).waitFor();

  step = "the admin signs in and opens the operator dashboard";
  await account(adminEmail, "Operator Admin");
  await page.goto(`${base}/login`);
  await page.getByLabel("Email").fill(adminEmail);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Studio" }).waitFor();
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Operator", exact: true }).click();
  await page.getByRole("heading", { name: "Operator · Dashboard" }).waitFor();
  step = "the dashboard's charts are not empty";
  for (const chart of ["chart-spent", "chart-jobs", "chart-active", "chart-signups"]) {
    const total = await chartTotal(chart);
    if (!(total > 0)) throw new Error(`the chart ${chart} shows ${total}`);
  }
  if ((await page.locator("[data-testid=chart-spent] rect").count()) === 0) throw new Error("no bars drawn");
  await page.getByTestId("chart-revenue").first().waitFor();
  // The numbers behind a chart open by keyboard.
  await page.getByTestId("chart-jobs").getByText("Show the numbers").focus();
  await page.keyboard.press("Enter");
  await page.getByRole("table", { name: "Jobs by status, per day" }).waitFor();
  await shot("01-dashboard");

  step = "search the users and open the author's wallet";
  await operatorNav("Users").click();
  await page.getByRole("heading", { name: "Operator · Users" }).waitFor();
  await page.getByLabel("Search users").fill(`AUTHOR-${stamp}`);
  // The server searches every account (any case), once typing pauses.
  await page.getByTestId("users-summary").filter({ hasText: `1 account matches “AUTHOR-${stamp}”` }).waitFor();
  await page.getByRole("link", { name: `Wallet of author-${stamp}@example.com` }).waitFor();
  if ((await page.locator("tbody tr").count()) !== 1) throw new Error("the search shows other accounts");
  await shot("02-users");
  await page.getByRole("link", { name: `Wallet of author-${stamp}@example.com` }).click();
  await page.getByTestId("user-available").filter({ hasText: /\d+ credits?/ }).waitFor();
  await page.locator("tbody tr").filter({ hasText: "charge" }).first().waitFor();
  await shot("03-user-wallet");

  step = "hide the reported post from the report queue";
  await operatorNav("Reports").click();
  await page.getByRole("heading", { name: "Operator · Reports" }).waitFor();
  const report = page.getByTestId("report").filter({ hasText: title });
  await report.waitFor();
  await shot("04-reports");
  await page.getByLabel("Reason for the action").fill("spam, as reported");
  await report.getByRole("button", { name: "Hide post" }).click();
  await page.getByTestId("moderation-status").filter({ hasText: `Hid “${title}”` }).waitFor();
  await report.waitFor({ state: "detached" });
  await page.getByRole("button", { name: "Unhide" }).waitFor();
  await shot("05-report-hidden");
  const feed = await api("GET", "/v1/posts?page_size=100", { token: reader });
  if ((feed.posts ?? []).some((p) => p.id === post.id)) throw new Error("the hidden post is still in the feed");

  step = "see the providers and their circuits";
  await operatorNav("Providers").click();
  await page.getByRole("heading", { name: "Operator · Providers" }).waitFor();
  await page.getByTestId("circuit-sandbox").filter({ hasText: "closed" }).waitFor();
  await shot("06-providers");

  step = "the phone layout";
  await page.setViewportSize({ width: 390, height: 844 });
  await operatorNav("Dashboard").click();
  await page.getByTestId("chart-jobs").waitFor();
  await shot("07-dashboard-phone");

  if (consoleErrors.length) throw new Error(`errors in the page: ${consoleErrors.join("; ")}`);
  console.log(`klik operator: every step passed; screenshots in ${artifacts}`);
} catch (error) {
  await shot("failed").catch(() => {});
  console.error(`klik operator failed at "${step}": ${error?.message ?? error}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
