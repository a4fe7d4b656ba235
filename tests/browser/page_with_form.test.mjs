// What the README promises a newcomer, done by a real browser: through the REST API create
// a form and a page embedding it, publish, then open the page in headless Chromium, fill
// in the email, submit, and find the contact through the API.
// Run by scripts/test-browser.sh against `spacectl serve`: BASE_URL, SPACE_ID, SPACE_KEY
// and CHROMIUM come from the environment.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { chromium } from "playwright-core";

const base = process.env.BASE_URL;
const space = process.env.SPACE_ID;
const key = process.env.SPACE_KEY;
const api = `${base}/functions/v1/space-api`;

async function call(method, path, body) {
  const response = await fetch(`${api}${path}`, {
    method,
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

test("a visitor submits the form embedded in a published page and becomes a contact", async (t) => {
  assert.ok(base && space && key, "BASE_URL, SPACE_ID and SPACE_KEY are set");

  const form = await call("POST", "/forms", {
    name: "Contact us",
    fields: [
      { name: "email", type: "email", required: true },
      { name: "name", label: "Your name" },
      { name: "plan", type: "select", options: ["starter", "growth"] },
    ],
    success_message: "Thanks, we will be in touch.",
  });
  assert.equal(form.status, 201, JSON.stringify(form.body));
  const page = await call("POST", "/pages", {
    title: "Pricing",
    slug: "pricing",
    layout_html: `<h1>Pricing</h1><p>Starter or growth?</p>{{form:${form.body.id}}}<script>document.title = "hacked"</script>`,
  });
  assert.equal(page.status, 201, JSON.stringify(page.body));
  const published = await call("POST", `/pages/${page.body.id}/publish`, {});
  assert.equal(published.status, 200, JSON.stringify(published.body));
  assert.equal(published.body.public_path, `/p/${space}/pricing`);

  // A fresh profile per run (playwright takes it as launchPersistentContext's argument,
  // not as `--user-data-dir`), removed afterwards.
  const profile = mkdtempSync(join(tmpdir(), "space-chromium-"));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
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
  t.after(async () => {
    await browser.close();
    rmSync(profile, { recursive: true, force: true });
  });
  const tab = await browser.newPage();
  const violations = [];
  tab.on("console", (message) => {
    if (message.type() === "error") violations.push(message.text());
  });

  const opened = await tab.goto(`${base}${published.body.public_path}`);
  assert.equal(opened.status(), 200);
  assert.match(opened.headers()["content-security-policy"] ?? "", /default-src 'none'/);
  assert.equal(await tab.title(), "Pricing", "the page's script never ran");
  assert.equal(await tab.locator("h1").textContent(), "Pricing");
  if (process.env.SCREENSHOT_DIR) await tab.screenshot({ path: join(process.env.SCREENSHOT_DIR, "page.png"), fullPage: true });
  const email = tab.getByLabel("Email");
  assert.equal(await email.getAttribute("type"), "email");
  assert.equal(await email.evaluate((input) => input.required), true);

  // The browser itself refuses an empty required field: no request leaves the page.
  await tab.getByRole("button", { name: "Send" }).click();
  assert.equal(new URL(tab.url()).pathname, `/p/${space}/pricing`);

  const visitor = `visitor-${Date.now()}@example.com`;
  await email.fill(visitor);
  await tab.getByLabel("Your name").fill("Browser Visitor");
  await tab.getByLabel("Plan").selectOption("growth");
  const [answer] = await Promise.all([
    tab.waitForNavigation(),
    tab.getByRole("button", { name: "Send" }).click(),
  ]);
  assert.equal(answer.status(), 200);
  assert.equal(new URL(tab.url()).pathname, `/f/${form.body.id}`);
  assert.match(await tab.locator("body").textContent(), /Thanks, we will be in touch\./);
  if (process.env.SCREENSHOT_DIR) await tab.screenshot({ path: join(process.env.SCREENSHOT_DIR, "thanks.png") });
  // The page's own markup and styles live within its Content-Security-Policy.
  assert.deepEqual(violations.filter((text) => text.includes("Content Security Policy")), []);

  const contacts = await call("GET", `/contacts?email=${encodeURIComponent(visitor)}`);
  assert.equal(contacts.status, 200);
  assert.equal(contacts.body.data.length, 1, JSON.stringify(contacts.body));
  assert.equal(contacts.body.data[0].name, "Browser Visitor");
  const submissions = await call("GET", `/forms/${form.body.id}/submissions`);
  assert.equal(submissions.body.data.length, 1);
  assert.deepEqual(submissions.body.data[0].data, { email: visitor, name: "Browser Visitor", plan: "growth" });
  assert.equal(submissions.body.data[0].contact_id, contacts.body.data[0].id);
});
