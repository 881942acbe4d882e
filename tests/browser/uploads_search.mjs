// klik studio's upload, search, assistants and lessons pages in a real browser
// (headless Chromium through playwright-core), against a running stack. A new user
// signs in → uploads a PNG in the post composer (create → PUT to the signed URL →
// complete: it is attached) → saves and publishes the post → sees the image in the
// feed → finds the post on the Search page by a word of its body (the word marked in
// the snippet) → sees the upload on the Assets page (Uploads) → on the Account page
// uploads a profile picture, switches to the composer's upload, removes it → creates
// a public assistant and starts a chat with it → renames that chat → opens the lessons
// catalogue. A screenshot of each page goes to the artifacts directory.
//
//   node tests/browser/uploads_search.mjs http://127.0.0.1:8080 test-artifacts/uploads-search
//
// Exits non-zero (with the failing step and a screenshot) when any step fails.
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { crc32, deflateSync } from "node:zlib";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const { chromium } = createRequire(join(root, "web", "package.json"))("playwright-core");

const [base = "http://127.0.0.1:8080", artifacts = join(root, "test-artifacts", "uploads-search")] = process.argv.slice(2);
const PASSWORD = "correct horse battery";
const STEP_MS = 20_000;
mkdirSync(artifacts, { recursive: true });

/** A real w×h PNG of one colour (so the browser decodes and draws it). */
function png(width, height, [r, g, b]) {
  const chunk = (type, data) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, "ascii");
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([Buffer.from(type, "ascii"), data])) >>> 0, 0);
    return Buffer.concat([head, data, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const row = Buffer.concat([Buffer.from([0]), Buffer.from(Array.from({ length: width }, () => [r, g, b]).flat())]);
  const pixels = Buffer.concat(Array.from({ length: height }, () => row));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(pixels)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
});
const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
const page = await context.newPage();
page.setDefaultTimeout(STEP_MS);
page.on("dialog", (dialog) => void dialog.accept());
const consoleErrors = [];
// The one refusal the script provokes (an upload of a text file) logs its 400 answer.
let refusalExpected = false;
page.on("pageerror", (error) => consoleErrors.push(String(error)));
page.on("console", (message) => {
  const where = message.location().url;
  if (message.type() !== "error" || where.endsWith("/favicon.ico")) return;
  if (refusalExpected && where.endsWith("/v1/uploads") && message.text().includes("status of 400")) return;
  consoleErrors.push(`${message.text()} (${where})`);
});

let step = "start";
const started = Date.now();
const shot = (name) => page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
const nav = (name) => page.getByRole("navigation", { name: "Main" }).getByRole("link", { name, exact: true });
/** Whether an <img> has loaded and decoded (a broken image has naturalWidth 0). */
const drawn = (img) => img.evaluate((el) => el.complete && el.naturalWidth > 0);

try {
  step = "sign up";
  const stamp = Date.now();
  const word = `kestrel${stamp.toString(36)}`;
  const title = `Upload test ${stamp}`;
  await page.goto(`${base}/signup`);
  await page.getByLabel("Display name").fill("Upload Tester");
  await page.getByLabel("Email").fill(`uploads-${stamp}@example.com`);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.getByRole("heading", { name: "Studio" }).waitFor();

  step = "upload a PNG in the post composer: it is attached";
  await nav("My posts").click();
  await page.getByRole("heading", { name: "My posts" }).waitFor();
  await page.getByLabel("Upload an image").setInputFiles({ name: "square.png", mimeType: "image/png", buffer: png(64, 48, [40, 120, 220]) });
  const attached = page.locator(".pick").filter({ has: page.locator("input[type=checkbox]:checked") });
  await attached.first().waitFor();
  if ((await attached.count()) !== 1) throw new Error(`${await attached.count()} assets attached, not the one upload`);
  if (!(await drawn(attached.locator("img")))) throw new Error("the uploaded image is not drawn in the composer");

  step = "a file of another type is refused in words";
  refusalExpected = true;
  await page.getByLabel("Upload an image").setInputFiles({ name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("hello") });
  await page.getByRole("alert").filter({ hasText: "Only PNG, JPEG, WebP and GIF images can be uploaded." }).waitFor();
  refusalExpected = false;

  step = "save the post with the upload and publish it";
  await page.getByLabel("Title", { exact: true }).fill(title);
  await page.getByLabel("Text", { exact: true }).fill(`A blue square seen by a ${word} over the hills.`);
  await shot("01-composer-upload");
  await page.getByRole("button", { name: "Save draft" }).click();
  await page.getByRole("button", { name: `Publish “${title}”` }).click();
  await page.locator(`li[data-status=published]`).filter({ hasText: title }).waitFor();

  step = "the image shows with the post in the feed";
  await nav("Feed").click();
  const post = page.locator("article").filter({ has: page.getByRole("heading", { name: title }) });
  const image = post.getByRole("img", { name: `Image in “${title}”` });
  await image.waitFor();
  await page.waitForFunction((el) => el.complete && el.naturalWidth === 64, await image.elementHandle());
  await shot("02-feed-upload");

  step = "find the post by a word of its body on the Search page";
  await nav("Search").click();
  await page.getByRole("heading", { name: "Search" }).waitFor();
  await page.getByRole("searchbox", { name: "Search for" }).fill(word);
  await page.getByRole("button", { name: "Search", exact: true }).click();
  const hit = page.getByTestId("search-hit").filter({ has: page.getByRole("heading", { name: title }) });
  await hit.waitFor();
  const marked = await hit.locator("mark").allTextContents();
  if (!marked.some((m) => m.toLowerCase() === word)) throw new Error(`the snippet marks ${JSON.stringify(marked)}, not "${word}"`);
  await hit.getByRole("img", { name: `Image in “${title}”` }).waitFor();
  await shot("03-search");
  await page.getByRole("radio", { name: "Lessons" }).check();
  await page.getByTestId("search-empty").filter({ hasText: `No lessons match “${word}”` }).waitFor();

  step = "the upload is listed on the Assets page";
  await nav("Assets").click();
  await page.getByLabel("Show", { exact: true }).selectOption("UPLOAD");
  await page.getByRole("list", { name: "Uploads assets" }).getByRole("img", { name: "Uploaded image" }).waitFor();
  await shot("04-assets-uploads");

  step = "the Account page: upload a profile picture, choose another of my images, remove it";
  await page.getByRole("link", { name: "Account", exact: true }).click();
  await page.getByRole("heading", { name: "Account", exact: true }).waitFor();
  await page.getByRole("img", { name: "No profile picture" }).waitFor();
  await page.getByLabel("Upload a new picture").setInputFiles({ name: "me.png", mimeType: "image/png", buffer: png(32, 32, [220, 60, 40]) });
  await page.getByTestId("avatar-status").filter({ hasText: "Your profile picture is set." }).waitFor();
  const picture = () => page.getByRole("img", { name: "Your profile picture" });
  await page.waitForFunction((el) => el.complete && el.naturalWidth === 32, await picture().elementHandle());
  const images = page.getByRole("list", { name: "Your images" }).getByRole("button");
  await images.nth(1).waitFor();
  if ((await images.count()) !== 2) throw new Error(`${await images.count()} images to choose from, not the two uploads`);
  await shot("04b-account-picture");
  await images.filter({ hasNotText: "(your picture)" }).click(); // the composer's upload
  await page.getByTestId("avatar-status").filter({ hasText: "Your profile picture is set." }).waitFor();
  await page.waitForFunction(() => {
    const img = document.querySelector('img[alt="Your profile picture"]');
    return img instanceof HTMLImageElement && img.complete && img.naturalWidth === 64;
  });
  refusalExpected = true;
  await page.getByLabel("Upload a new picture").setInputFiles({ name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("hello") });
  await page.getByRole("alert").filter({ hasText: "Only PNG, JPEG, WebP and GIF images can be uploaded." }).waitFor();
  refusalExpected = false;
  await page.getByRole("button", { name: "Remove the picture" }).click();
  await page.getByTestId("avatar-status").filter({ hasText: "Your profile picture is removed." }).waitFor();
  await page.getByRole("img", { name: "No profile picture" }).waitFor();

  step = "create a public assistant and start a chat with it; rename the chat";
  await nav("Assistants").click();
  await page.getByLabel("Name", { exact: true }).fill("Hill guide");
  await page.getByLabel("Instructions", { exact: true }).fill("Answer as a friendly hill-walking guide.");
  await page.getByLabel("Temperature (0–2)").fill("0.5");
  await page.getByLabel("Visibility", { exact: true }).selectOption("public");
  await page.getByRole("button", { name: "Create assistant" }).click();
  await page.getByTestId("public-assistant").filter({ hasText: "Hill guide" }).waitFor();
  await shot("05-assistants");
  await page.getByTestId("my-assistant").filter({ hasText: "Hill guide" }).getByRole("button", { name: "Start a chat with Hill guide" }).click();
  await page.getByRole("heading", { name: "Chat with Hill guide" }).waitFor();
  await page.getByRole("button", { name: "Rename this chat" }).click();
  await page.getByLabel("Chat title", { exact: true }).fill("Hill questions");
  await page.getByRole("button", { name: "Save title" }).click();
  await page.getByRole("heading", { name: "Hill questions" }).waitFor();
  await page.getByRole("complementary", { name: "Your chats" }).getByRole("link", { name: "Hill questions" }).waitFor();
  await shot("06-chat-renamed");

  step = "edit the assistant";
  await nav("Assistants").click();
  await page.getByTestId("my-assistant").filter({ hasText: "Hill guide" }).getByRole("button", { name: "Edit Hill guide" }).click();
  const editor = page.getByRole("form", { name: "Edit Hill guide" });
  await editor.getByLabel("Description", { exact: true }).fill("Routes, weather and maps");
  await editor.getByRole("button", { name: "Save" }).click();
  await page.getByTestId("public-assistant").filter({ hasText: "Routes, weather and maps" }).waitFor();

  step = "write a lesson, edit and publish it, copy it from the catalogue, unpublish and delete";
  await nav("Lessons").click();
  const topic = `Tides ${stamp}`;
  await page.getByRole("form", { name: "Write a lesson" }).getByLabel("Topic", { exact: true }).fill(topic);
  await page.getByRole("button", { name: "Write lesson" }).click();
  const mine = page.getByRole("list", { name: "Your lessons" });
  await mine.getByRole("button", { name: `Publish ${topic}`, exact: true }).waitFor(); // ready: its job wrote the body
  await mine.getByRole("button", { name: `Edit ${topic}`, exact: true }).click();
  await page.getByRole("form", { name: `Edit ${topic}` }).getByLabel("Topic", { exact: true }).fill(`${topic} and moons`);
  await page.getByRole("button", { name: "Save changes" }).click();
  await mine.getByRole("button", { name: `Publish ${topic} and moons`, exact: true }).click();
  await mine.getByRole("button", { name: `Unpublish ${topic} and moons`, exact: true }).waitFor();
  await page.getByRole("tab", { name: "Catalogue" }).click();
  const catalogue = page.getByRole("list", { name: "Published lessons" });
  await catalogue.getByRole("heading", { name: `${topic} and moons` }).waitFor();
  await page.getByRole("tabpanel").getByLabel("Type", { exact: true }).selectOption("quiz");
  await page.getByText("No published lessons match these filters.").waitFor();
  await page.getByRole("tabpanel").getByLabel("Type", { exact: true }).selectOption("");
  await catalogue.getByRole("button", { name: `Copy to my lessons (${topic} and moons)` }).click();
  await page.getByRole("status").filter({ hasText: "Copied to your lessons." }).waitFor();
  await shot("07-lessons-catalogue");
  await page.getByRole("tab", { name: "My lessons" }).click();
  await mine.getByRole("button", { name: `Publish ${topic} and moons`, exact: true }).waitFor(); // the ready copy
  await mine.getByRole("button", { name: `Unpublish ${topic} and moons`, exact: true }).click();
  await page.waitForFunction(() => document.querySelectorAll('li[data-status="ready"]').length === 2);
  await mine.getByRole("button", { name: `Delete ${topic} and moons`, exact: true }).first().click();
  await page.waitForFunction(() => document.querySelectorAll('[aria-label="Your lessons"] > li').length === 1);
  await shot("07b-lessons-mine");

  step = "the search page on a phone";
  await page.setViewportSize({ width: 390, height: 844 });
  await nav("Search").click();
  await page.getByRole("searchbox", { name: "Search for" }).fill(word);
  await page.keyboard.press("Enter");
  await hit.waitFor();
  await shot("08-search-phone");

  if (consoleErrors.length) throw new Error(`errors in the page: ${consoleErrors.join("; ")}`);
  console.log(`klik uploads and search: every step passed in ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${artifacts}`);
} catch (error) {
  await shot("failed").catch(() => {});
  console.error(`klik uploads and search failed at "${step}": ${error?.message ?? error}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
