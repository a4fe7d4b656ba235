// The owner's console in headless Chromium against `spacectl serve`: sign in with the
// account key (by keyboard), create and rename a Space, mint a key by ticking pages:read and
// pages:write on the scope grid, copy its token (shown once) and use it over REST (a draft
// page: yes; publishing: 403), see it counted in the list, set and delete a secret, connect a
// sandbox account and a messaging channel (its signing secret shown once), pause and resume
// a number, disconnect, see a page created with the key arrive in Live within a second, mint
// a key whose pages:run waits for approval, approve one publish (the page goes live) and
// reject another with a reason, revoke the key (the next call is 401) and delete the Space by
// typing its name. Along the way: nothing overflows at 375 px, the focus is visible, every
// control has a label, and no console error, failed request or CSP violation happens.
// Run by scripts/test-browser.sh: BASE_URL, ACCOUNT_KEY and CHROMIUM come from the
// environment. Screenshots go to target/console-screenshots/ (not committed).
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { chromium } from "playwright-core";

const base = process.env.BASE_URL;
const accountKey = process.env.ACCOUNT_KEY;
const shots = fileURLToPath(new URL("../../target/console-screenshots/", import.meta.url));
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 375, height: 800 };

async function rest(token, method, path, body) {
  const response = await fetch(`${base}/functions/v1/space-api${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

test("an owner mints, watches and revokes a key in the console", async (t) => {
  assert.ok(base && accountKey, "BASE_URL and ACCOUNT_KEY are set");
  mkdirSync(shots, { recursive: true });
  const profile = mkdtempSync(join(tmpdir(), "space-console-"));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    viewport: DESKTOP,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  t.after(async () => {
    await browser.close();
    rmSync(profile, { recursive: true, force: true });
  });
  await browser.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  const tab = await browser.newPage();
  const problems = [];
  tab.on("console", (message) => {
    if (message.type() === "error" || message.type() === "warning") problems.push(`${message.type()}: ${message.text()}`);
  });
  tab.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  await tab.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (event) => {
      console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`);
    });
  });
  const requested = [];
  tab.on("request", (request) => requested.push(request.url()));
  tab.on("response", (response) => {
    if (response.status() >= 400) problems.push(`${response.status()} for ${response.url()}`);
  });

  /** At 375 px: no horizontal overflow; a screenshot of each width. */
  async function checkWidths(name) {
    await tab.screenshot({ path: join(shots, `${name}-desktop.png`), fullPage: true });
    await tab.setViewportSize(PHONE);
    const width = await tab.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= PHONE.width, `${name}: the page is ${width} px wide at 375 px`);
    await tab.screenshot({ path: join(shots, `${name}-375.png`), fullPage: true });
    await tab.setViewportSize(DESKTOP);
  }

  async function open(section) {
    await tab.getByRole("navigation", { name: "Sections" }).getByRole("button", { name: section, exact: true }).click();
  }

  // Sign in by keyboard: the key field has the focus on arrival.
  const page = await tab.goto(`${base}/console`);
  assert.equal(page.status(), 200);
  assert.match(page.headers()["content-security-policy"] ?? "", /default-src 'none'/);
  await tab.waitForFunction(() => document.activeElement && document.activeElement.id === "account-key");
  await checkWidths("01-sign-in");
  await tab.keyboard.type(accountKey);
  // The focus shows where it is.
  await tab.keyboard.press("Tab");
  const ring = await tab.evaluate(() => {
    const style = getComputedStyle(document.activeElement);
    return [document.activeElement.textContent, style.outlineStyle, style.outlineWidth];
  });
  assert.deepEqual(ring, ["Sign in", "solid", "3px"], "a visible focus ring on the focused button");
  await tab.keyboard.press("Shift+Tab");
  await tab.keyboard.press("Enter");
  await tab.locator("#tabs").waitFor();
  assert.equal(await tab.locator("#account-key").inputValue(), "", "the key leaves the field");
  const stored = await tab.evaluate(() => [localStorage.length, sessionStorage.length, document.cookie]);
  assert.deepEqual(stored, [0, 0, ""], "nothing kept in storage or cookies");

  // A new Space.
  await open("Spaces");
  let spaceName = `Console ${Date.now()}`;
  await tab.locator("#space-name").fill(spaceName);
  await tab.getByRole("button", { name: "Create Space" }).click();
  const spaceCard = tab.locator("#spaces-list li", { hasText: spaceName });
  await spaceCard.waitFor();
  const spaceId = await spaceCard.getAttribute("data-space");
  assert.equal(await tab.locator("#space-select").inputValue(), spaceId, "the new Space is chosen");
  // Renamed, it is renamed everywhere.
  const firstName = spaceName;
  spaceName = `${firstName} renamed`;
  await spaceCard.getByRole("button", { name: "Rename" }).click();
  await tab.getByLabel(`New name for ${firstName}`).fill(spaceName);
  await tab.getByRole("button", { name: "Save" }).click();
  await tab.locator(`#spaces-list li[data-space="${spaceId}"] h3`, { hasText: spaceName }).waitFor();
  assert.equal(await tab.locator("#space-select option:checked").textContent(), spaceName);
  await checkWidths("02-spaces");

  // A key with two cells of the grid.
  await open("API keys");
  await tab.locator("#keys-list li").first().waitFor();
  assert.equal(await tab.locator("#scope-wallet-write").count(), 0, "no cell the catalogue lacks");
  assert.equal(await tab.locator("#scope-pages-run").count(), 1);
  assert.match(await tab.locator("#scope-grid thead th.live").textContent(), /run.*live/i);
  await tab.locator("#key-name").fill("console agent");
  await tab.getByLabel("pages:read", { exact: true }).check();
  await tab.getByLabel("pages:write", { exact: true }).check();
  await tab.locator("#key-expiry").selectOption("30");
  await tab.getByLabel("phone.sms (needs phone:run)").fill("50");
  await checkWidths("03-new-key");
  await tab.getByRole("button", { name: "Create key" }).click();
  await tab.locator("#minted").waitFor();
  await tab.locator('button[data-copy="minted-token"]').click();
  const token = await tab.evaluate(() => navigator.clipboard.readText());
  assert.match(token, /^wks_live_/);
  assert.equal(await tab.locator("#minted-token").inputValue(), token);
  const claude = await tab.locator("#minted-claude").inputValue();
  assert.equal(
    claude,
    `claude mcp add --transport http space ${base}/functions/v1/space-mcp --header "Authorization: Bearer ${token}"`,
  );
  const mcpJson = JSON.parse(await tab.locator("#minted-mcp-json").inputValue());
  assert.equal(mcpJson.mcpServers.space.headers.Authorization, `Bearer ${token}`);
  await checkWidths("04-token");

  // The token works, within its scopes: a draft page, but no publishing (pages:run).
  const draft = await rest(token, "POST", "/pages", { title: "Launch", layout_html: "<h1>Launch</h1>" });
  assert.equal(draft.status, 201, JSON.stringify(draft.body));
  assert.equal((await rest(token, "GET", "/pages")).status, 200);
  const publish = await rest(token, "POST", `/pages/${draft.body.id}/publish`, {});
  assert.equal(publish.status, 403);
  assert.match(publish.body.error.message, /pages:run/);

  // Shown once: hiding it clears it; the list counts the three requests.
  await tab.getByRole("button", { name: "Done: hide the token" }).click();
  assert.equal(await tab.locator("#minted").isHidden(), true);
  assert.equal(await tab.locator("#minted-token").inputValue(), "");
  await tab.getByRole("button", { name: "Refresh" }).click();
  const keyCard = tab.locator("#keys-list li", { hasText: "console agent" });
  await keyCard.waitFor();
  const keyId = await keyCard.getAttribute("data-key");
  const fact = (card, term) =>
    card.locator("dt", { hasText: term }).locator("xpath=following-sibling::dd[1]").first().textContent();
  // The refreshed list replaces the one drawn before the requests: wait for its counts.
  const settled = async (card, term, expected) => {
    const until = Date.now() + 5000;
    let seen = await fact(card, term);
    while (seen !== expected && Date.now() < until) {
      await tab.waitForTimeout(50);
      seen = await fact(card, term);
    }
    return seen;
  };
  assert.equal(await settled(keyCard, "Requests today", "3"), "3");
  assert.equal(await fact(keyCard, "This month"), "3");
  assert.equal(await fact(keyCard, "Scopes"), "pages:read pages:write");
  assert.equal(await fact(keyCard, "Caps"), "phone.sms 50/day");
  assert.notEqual(await fact(keyCard, "Last used"), "never");
  await keyCard.getByText("Requests per day").click();
  const today = new Date().toISOString().slice(0, 10);
  await keyCard.locator(`li[data-date="${today}"]`, { hasText: `${today}: 3` }).waitFor();
  assert.ok(!(await tab.content()).includes(token), "the token is nowhere on the page any more");

  // A secret: set (write-only), listed by name, deleted.
  await open("Secrets");
  const secretValue = `sk_console_${Date.now()}`;
  await tab.locator("#secret-name").fill("STRIPE_KEY");
  await tab.locator("#secret-value").fill(secretValue);
  await tab.getByRole("button", { name: "Set value" }).click();
  const secretCard = tab.locator('#secrets-list li[data-secret="STRIPE_KEY"]');
  await secretCard.waitFor();
  assert.equal(await tab.locator("#secret-value").inputValue(), "");
  assert.ok(!(await tab.content()).includes(secretValue), "the value is not on the page");
  await checkWidths("05-secrets");
  await secretCard.getByRole("button", { name: "Delete" }).click();
  await secretCard.getByRole("button", { name: "Yes, delete" }).click();
  await secretCard.waitFor({ state: "detached" });

  // A sandbox connection.
  await open("Connections");
  await tab.locator("#connection-kind").selectOption("social");
  await tab.locator("#connection-network").selectOption("linkedin");
  await tab.locator("#connection-name").fill("Acme on LinkedIn");
  await tab.getByRole("button", { name: "Connect", exact: true }).click();
  const connection = tab.locator("#connections-list li", { hasText: "Acme on LinkedIn" });
  await connection.waitFor();
  assert.equal(await fact(connection, "Provider"), "sandbox");
  assert.equal(await fact(connection, "Network"), "linkedin");
  // A messaging channel's signing secret shows once.
  await tab.locator("#connection-kind").selectOption("messaging");
  await tab.locator("#connection-channel").selectOption("whatsapp");
  await tab.locator("#connection-address").fill("+12015550100");
  await tab.locator("#connection-name").fill("Support on WhatsApp");
  await tab.getByRole("button", { name: "Connect", exact: true }).click();
  await tab.locator("#connection-secret").waitFor();
  assert.ok((await tab.locator("#connection-secret-value").inputValue()).length > 16);
  const whatsapp = tab.locator("#connections-list li", { hasText: "Support on WhatsApp" });
  await whatsapp.waitFor();
  await checkWidths("06-connections");
  await tab.getByRole("button", { name: "Done", exact: true }).click();
  assert.equal(await tab.locator("#connection-secret-value").inputValue(), "");
  // The sandbox plays a customer writing in.
  await whatsapp.getByRole("button", { name: "Play a customer" }).click();
  await whatsapp.getByLabel("From (a number like +12015550123)").fill("+12015550123");
  await whatsapp.getByLabel("Message").fill("Hi there");
  await whatsapp.getByRole("button", { name: "Send to the inbox" }).click();
  await tab.locator("#status", { hasText: "Received in thread thr_" }).waitFor();
  // A phone number that sends SMS only.
  await tab.locator("#connection-kind").selectOption("phone");
  await tab.locator("#connection-number").fill("+1 201 555 0100");
  await tab.getByLabel("voice").uncheck();
  await tab.locator("#connection-name").fill("Front desk");
  await tab.getByRole("button", { name: "Connect", exact: true }).click();
  const phone = tab.locator("#connections-list li", { hasText: "Front desk" });
  await phone.waitFor();
  assert.equal(await fact(phone, "Number"), "+12015550100");
  assert.equal(await fact(phone, "Capabilities"), "sms");
  // Paused, it takes no new work; resumed, it does.
  await phone.getByRole("button", { name: "Pause" }).click();
  await tab.locator("#status", { hasText: "Paused Front desk" }).waitFor();
  assert.equal(await fact(phone, "Active"), "no");
  await phone.getByRole("button", { name: "Resume" }).click();
  await tab.locator("#status", { hasText: "Resumed Front desk" }).waitFor();
  assert.equal(await fact(phone, "Active"), "yes");
  // An ads account, on an ad network.
  await tab.locator("#connection-kind").selectOption("ads");
  await tab.locator("#connection-ad-network").selectOption("meta");
  await tab.locator("#connection-name").fill("Acme ads");
  await tab.getByRole("button", { name: "Connect", exact: true }).click();
  const ads = tab.locator("#connections-list li", { hasText: "Acme ads" });
  await ads.waitFor();
  assert.equal(await fact(ads, "Kind"), "ads");
  assert.equal(await fact(ads, "Network"), "meta");
  // Disconnecting asks once more.
  await connection.getByRole("button", { name: "Disconnect" }).click();
  await connection.getByRole("button", { name: "Yes, disconnect" }).click();
  await connection.waitFor({ state: "detached" });

  // Live: a REST write with the minted key shows up, filtered by type and by key.
  await open("Live");
  await tab.locator("#live-state", { hasText: "Watching" }).waitFor();
  await tab.locator("#live-type").fill("page.*");
  await tab.locator("#live-key").selectOption(keyId);
  const written = Date.now();
  const page2 = await rest(token, "POST", "/pages", { title: "Pricing", layout_html: "<h1>Pricing</h1>" });
  assert.equal(page2.status, 201);
  const arrived = tab.locator('#live-events li[data-type="page.created"]');
  await arrived.waitFor({ timeout: 1000 });
  const seenAfter = Date.now() - written;
  assert.match(await arrived.textContent(), /console agent/);
  assert.match(await arrived.textContent(), new RegExp(page2.body.id));
  await tab.locator("#live-type").fill("contact.*");
  assert.equal(await arrived.count(), 0, "the type filter hides it");
  await tab.locator("#live-type").fill("page.*");
  await checkWidths("07-live");
  t.diagnostic(`event shown in Live ${seenAfter} ms after the REST write returned`);

  // Approvals: a key that must ask before publishing, minted in the console.
  await open("API keys");
  await tab.locator("#keys-list li").first().waitFor();
  await tab.locator("#key-name").fill("careful agent");
  const asks = tab.locator("#key-approval-scopes");
  assert.equal(await asks.locator("input").count(), 0, "no run scope ticked, nothing to approve");
  await tab.getByLabel("pages:write", { exact: true }).check();
  await tab.getByLabel("pages:run (live action)", { exact: true }).check();
  assert.deepEqual(await asks.locator("input").evaluateAll((boxes) => boxes.map((box) => box.value)), ["pages:run"]);
  await asks.getByLabel("pages:run", { exact: true }).check();
  await tab.getByRole("button", { name: "Create key" }).click();
  await tab.locator("#minted").waitFor();
  const careful = await tab.locator("#minted-token").inputValue();
  assert.match(careful, /^wks_live_/);
  await tab.getByRole("button", { name: "Done: hide the token" }).click();
  const carefulCard = tab.locator("#keys-list li", { hasText: "careful agent" });
  await carefulCard.waitFor();
  assert.equal(await fact(carefulCard, "Scopes"), "pages:write pages:run");
  assert.equal(await fact(carefulCard, "Approval required"), "pages:run");

  await open("Approvals");
  await tab.locator("#approvals-state", { hasText: "Watching" }).waitFor();
  await tab.locator("#approvals-pending li.empty").waitFor();
  const account = async (method, path, body) => {
    const response = await fetch(`${base}/functions/v1/account-api/spaces/${spaceId}${path}`, {
      method,
      headers: { Authorization: `Bearer ${accountKey}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, body: await response.json() };
  };
  const publicPage = (slug) => fetch(`${base}/p/${spaceId}/${slug}`);
  /** Asks to publish a new page: 202, nothing published, the approval on the console. */
  async function askToPublish(slug, title) {
    const created = await rest(careful, "POST", "/pages", { title, slug, layout_html: `<h1>${title}</h1>` });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const asked = await rest(careful, "POST", `/pages/${created.body.id}/publish`, {});
    assert.equal(asked.status, 202, JSON.stringify(asked.body));
    assert.equal(asked.body.status, "pending");
    assert.equal(asked.body.operation, "pages_publish");
    assert.equal((await publicPage(slug)).status, 404, "not published while it waits");
    // The approval.requested event brings it in, no refresh needed.
    const card = tab.locator(`#approvals-pending li[data-approval="${asked.body.approval_id}"]`);
    await card.waitFor({ timeout: 5000 });
    assert.match(await card.textContent(), new RegExp(`POST /functions/v1/space-api/pages/${created.body.id}/publish`));
    assert.match(await fact(card, "Key"), /^careful agent \(wks_live_/);
    assert.equal(await fact(card, "Scope"), "pages:run");
    return { id: asked.body.approval_id, page: created.body.id, card };
  }

  const launch = await askToPublish("launch-day", "Launch day");
  await checkWidths("08-approval-pending");
  await launch.card.getByRole("button", { name: "Approve" }).click();
  await tab.locator("#status", { hasText: "Approved pages_publish" }).waitFor();
  // The worker runs it; approval.performed moves it in the history.
  const performed = tab.locator(`#approvals-history li[data-approval="${launch.id}"][data-status="performed"]`);
  await performed.waitFor({ timeout: 15000 });
  assert.equal(await tab.locator(`#approvals-pending li[data-approval="${launch.id}"]`).count(), 0);
  assert.equal(await fact(performed, "Answered"), "200");
  const launched = await account("GET", `/approvals/${launch.id}`);
  assert.equal(launched.body.status, "performed");
  assert.equal(launched.body.result.status, 200);
  assert.equal(launched.body.result.body.status, "published");
  const live = await publicPage("launch-day");
  assert.equal(live.status, 200, "published once approved");
  assert.match(await live.text(), /Launch day/);

  const teaser = await askToPublish("teaser", "Teaser");
  await teaser.card.getByRole("button", { name: "Reject" }).click();
  await teaser.card.getByLabel("Reason (optional, kept with the approval)").fill("Not before the launch");
  await teaser.card.getByRole("button", { name: "Reject this call" }).click();
  const rejected = tab.locator(`#approvals-history li[data-approval="${teaser.id}"][data-status="rejected"]`);
  await rejected.waitFor();
  assert.equal(await fact(rejected, "Reason"), "Not before the launch");
  await tab.locator("#approvals-pending li.empty").waitFor();
  const refused = await account("GET", `/approvals/${teaser.id}`);
  assert.equal(refused.body.status, "rejected");
  assert.equal(refused.body.reason, "Not before the launch");
  assert.equal((await publicPage("teaser")).status, 404, "a rejected call never runs");
  // The history filters by outcome.
  await tab.locator("#approvals-status").selectOption("rejected");
  assert.deepEqual(await tab.locator("#approvals-history li").evaluateAll((cards) => cards.map((card) => card.dataset.approval)), [teaser.id]);
  await tab.locator("#approvals-status").selectOption("");
  assert.equal(await tab.locator("#approvals-history li[data-approval]").count(), 2);
  await checkWidths("09-approvals");

  // Revoke: the next call is 401.
  await open("API keys");
  const revoking = tab.locator(`#keys-list li[data-key="${keyId}"]`);
  await revoking.getByRole("button", { name: "Revoke" }).click();
  await revoking.getByRole("button", { name: "Yes, revoke" }).click();
  await revoking.waitFor({ state: "detached" });
  assert.equal((await rest(token, "GET", "/contacts")).status, 401);

  // Every control has a label, the shown ones and the hidden ones.
  const unlabelled = await tab.evaluate(() =>
    [...document.querySelectorAll("input, select, textarea")].filter((c) => c.labels.length === 0).map((c) => c.id || c.outerHTML),
  );
  assert.deepEqual(unlabelled, []);

  // Delete the Space by typing its name.
  await open("Spaces");
  const card = tab.locator(`#spaces-list li[data-space="${spaceId}"]`);
  await card.getByRole("button", { name: "Delete" }).click();
  const confirm = card.getByRole("button", { name: "Delete this Space" });
  assert.equal(await confirm.isDisabled(), true, "not before the name is typed");
  await card.getByLabel(`Type “${spaceName}” to delete it`).fill(spaceName.slice(0, -1));
  assert.equal(await confirm.isDisabled(), true);
  await card.getByLabel(`Type “${spaceName}” to delete it`).fill(spaceName);
  await confirm.click();
  await tab.locator("#status", { hasText: `Deleted ${spaceName}` }).waitFor();
  // Listed as `deleting` until the worker's purge is over, then gone.
  await tab.waitForFunction((id) => {
    const listed = document.querySelector(`#spaces-list li[data-space="${id}"]`);
    return !listed || listed.textContent.includes("deleting");
  }, spaceId);
  const gone = await fetch(`${base}/functions/v1/account-api/spaces/${spaceId}`, {
    headers: { Authorization: `Bearer ${accountKey}` },
  });
  assert.ok(gone.status === 404 || (await gone.json()).status === "deleting", `the Space answers ${gone.status}`);
  await checkWidths("10-deleted");

  const elsewhere = requested.filter((url) => !url.startsWith(base));
  assert.deepEqual(elsewhere, [], "no request leaves the API's origin");
  assert.ok(requested.every((url) => !url.includes("wka_") && !url.includes("wks_")), "no key in a URL");
  assert.deepEqual(problems, [], "no console error or CSP violation");
});
