// Browser tests of the console, driven by the Rust end-to-end tests (crates/gatehouse/tests/
// e2e/console.rs), which start the gateway, the clients and the servers. This script drives
// Debian's Chromium with Playwright and talks to the test on stdout: it prints `STEP name
// value` lines the test waits for (a request id approved, ...) and `FAIL reason` if an
// expectation does not hold (it then exits non-zero). Screenshots go to $SHOTS.
//
//   CONSOLE_URL=http://127.0.0.1:PORT SHOTS=DIR TOKENS='{"bob": "gh_..."}' node console.mjs inbox|replay

import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const url = process.env.CONSOLE_URL;
const shots = process.env.SHOTS;
const tokens = JSON.parse(process.env.TOKENS ?? "{}");
const scene = process.argv[2];
mkdirSync(shots, { recursive: true });

const say = (line) => process.stdout.write(`${line}\n`);
function expect(ok, why) {
  if (!ok) throw new Error(why);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

async function page() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const p = await context.newPage();
  p.setDefaultTimeout(30_000);
  p.on("pageerror", (e) => say(`LOG page error: ${e.message}`));
  return p;
}

async function shot(p, name) {
  await p.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
  say(`STEP screenshot ${name}.png`);
}

async function signIn(p, who) {
  await p.goto(url);
  await p.fill("#token", tokens[who]);
  await p.click("#sign-in button[type=submit]");
  await p.waitForSelector("#bar:not([hidden])");
}

/// POSTs from inside the page (its cookie goes along), with or without the CSRF token.
async function postFromPage(p, path, withCsrf) {
  return p.evaluate(
    async ([path, withCsrf]) => {
      const me = await (await fetch("/v1/console/me")).json();
      const headers = { "content-type": "application/json" };
      if (withCsrf) headers["x-gatehouse-csrf"] = me.csrf;
      const r = await fetch(path, { method: "POST", headers, body: "{}" });
      return { status: r.status, body: await r.text() };
    },
    [path, withCsrf],
  );
}

/// Waits for a pending request whose statement contains `marker`; returns its card and id.
async function pendingCard(p, marker) {
  const card = p.locator("#pending .request", { hasText: marker });
  await card.waitFor({ timeout: 60_000 });
  return { card, id: await card.getAttribute("data-id") };
}

async function inbox() {
  const p = await page();
  await p.goto(url);
  await p.waitForSelector("#sign-in");
  await shot(p, "01-sign-in");
  // A wrong token: refused, with a reason, and no cookie set.
  await p.fill("#token", "gh_this-is-not-a-token");
  await p.click("#sign-in button[type=submit]");
  await p.waitForFunction(() => document.querySelector("#sign-in-error")?.textContent?.length > 0);
  const refused = await p.textContent("#sign-in-error");
  say(`STEP wrong-token ${refused.replace(/\s+/g, " ")}`);
  expect((await p.context().cookies()).length === 0, "a refused sign-in set a cookie");
  await shot(p, "02-sign-in-refused");

  await p.fill("#token", tokens.bob);
  await p.click("#sign-in button[type=submit]");
  await p.waitForSelector("#none-pending");
  const cookie = (await p.context().cookies()).find((c) => c.name === "gatehouse_console");
  expect(cookie && cookie.httpOnly && cookie.sameSite === "Strict", `cookie flags: ${JSON.stringify(cookie)}`);
  // The cookie names the sign-in; it is not the token (useless as a bearer anywhere else).
  expect(cookie.value.startsWith("gc_") && !cookie.value.includes(tokens.bob), "the cookie carries the token");
  const asBearer = await p.evaluate(
    async (secret) => (await fetch("/v1/approvals", { headers: { authorization: `Bearer ${secret}` } })).status,
    cookie.value,
  );
  expect(asBearer === 401, `the cookie's secret worked as a bearer token: ${asBearer}`);
  // Marks this page load: a reload would lose it.
  await p.evaluate(() => {
    window.__sameLoad = true;
  });
  say("STEP inbox-open");

  // The test now starts a psql DELETE that waits for approval: it appears without a reload.
  const first = await pendingCard(p, "first");
  expect(await p.evaluate(() => window.__sameLoad === true), "the page was reloaded");
  const text = await first.card.textContent();
  expect(text.includes("DELETE") && text.includes("alice") && text.includes("unbounded-writes"), `card: ${text}`);
  expect(/left/.test(text) && /asked/.test(text), `no age or time left: ${text}`);
  await shot(p, "03-inbox-pending");

  // A change sent with the cookie but without the CSRF token is refused, and changes nothing.
  const forged = await postFromPage(p, `/v1/approvals/${first.id}/approve`, false);
  expect(forged.status === 403 && forged.body.includes("CSRF"), `forged: ${JSON.stringify(forged)}`);
  say(`STEP csrf-refused ${forged.status}`);
  expect((await p.locator("#pending .request", { hasText: "first" }).count()) === 1, "forged approval took effect");

  await first.card.locator(".reason").fill("ticket 42");
  await first.card.locator("button.approve").click();
  await p.locator(`#decided tr[data-id="${first.id}"] .state`, { hasText: "approved" }).waitFor();
  await shot(p, "04-inbox-approved");
  say(`STEP approved ${first.id}`);

  const second = await pendingCard(p, "second");
  await second.card.locator(".reason").fill("not during business hours");
  await second.card.locator("button.deny").click();
  await p.locator(`#decided tr[data-id="${second.id}"] .state`, { hasText: "denied" }).waitFor();
  say(`STEP denied ${second.id}`);

  await p.goto(`${url}/#/approvals/${first.id}`);
  await p.locator(".facts dd", { hasText: "ticket 42" }).waitFor();
  await shot(p, "05-request-page");

  // Alice asked for the third one: she sees it, but no button, and the API refuses her.
  const alice = await page();
  await signIn(alice, "alice");
  const third = await pendingCard(alice, "third");
  expect((await third.card.locator("button.approve").count()) === 0, "alice sees an approve button on her own request");
  expect((await third.card.textContent()).includes("Your own request"), "no explanation for alice");
  const own = await postFromPage(alice, `/v1/approvals/${third.id}/approve`, true);
  expect(own.status === 403 && own.body.includes("yourself"), `own: ${JSON.stringify(own)}`);
  await shot(alice, "06-own-request");

  // Carol approves nothing: no approvals page, and the API refuses her even with the token.
  const carol = await page();
  await signIn(carol, "carol");
  expect(await carol.locator('[data-nav="approvals"]').isHidden(), "carol sees the approvals tab");
  const outsider = await postFromPage(carol, `/v1/approvals/${third.id}/approve`, true);
  expect(outsider.status === 403, `carol: ${JSON.stringify(outsider)}`);
  await shot(carol, "07-not-an-approver");
  say(`STEP refused ${third.id}`);

  // The administrator's sessions pages.
  const root = await page();
  await signIn(root, "root");
  await root.goto(`${url}/#/sessions`);
  await root.locator("#sessions tbody tr", { hasText: "alice" }).first().waitFor();
  await shot(root, "08-sessions");
  await root.fill('input[name="identity"]', "nobody-by-this-name");
  await root.click("#session-filter button[type=submit]");
  await root.locator("#sessions", { hasText: "No session matches" }).waitFor();
  // From the request's page to the session that held it.
  await root.goto(`${url}/#/approvals/${first.id}`);
  await root.click("#session-link");
  await root.locator("#statements tbody tr", { hasText: "first" }).waitFor();
  const row = await root.locator("#statements tbody tr", { hasText: "first" }).textContent();
  expect(row.includes("approved") && row.includes("bob"), `timeline row: ${row}`);
  await shot(root, "09-session-timeline");

  // The audit page: search, downloads, verify, evidence.
  await root.goto(`${url}/#/audit`);
  await root.fill('#audit-filter input[name="identity"]', "alice");
  await root.click("#audit-filter button[type=submit]");
  await root.locator("#audit-table tbody tr", { hasText: "first" }).waitFor();
  const others = await root.locator("#audit-table tbody tr", { hasNotText: "alice" }).count();
  expect(others === 0, `the identity filter let ${others} other rows through`);
  await shot(root, "10-audit");
  for (const [link, file] of [
    ["#download-jsonl", "audit.jsonl"],
    ["#download-csv", "audit.csv"],
    ["#evidence-download", "evidence.tar.gz"],
  ]) {
    const [download] = await Promise.all([root.waitForEvent("download"), root.click(link)]);
    await download.saveAs(`${shots}/${file}`);
    say(`STEP downloaded ${shots}/${file}`);
  }
  await root.click("#verify-run");
  await root.locator("#verify-status", { hasText: "intact" }).waitFor();
  await shot(root, "11-audit-verified");

  // A second tab follows the inbox on the same sign-in: signing out ends its stream too.
  const tab = await p.context().newPage();
  await tab.goto(`${url}/#/approvals`);
  await tab.waitForSelector("#pending .muted, #pending .request");

  // Signing out needs the CSRF token too: another site cannot sign an approver out.
  const forgedOut = await p.evaluate(async () => (await fetch("/v1/console/signout", { method: "POST" })).status);
  expect(forgedOut === 403, `sign-out without the CSRF token: ${forgedOut}`);
  await p.click("#sign-out");
  await p.waitForSelector("#sign-in");
  const after = await p.evaluate(async () => (await fetch("/v1/approvals")).status);
  expect(after === 401, `after sign-out: ${after}`);
  await tab.locator("#notice", { hasText: "stopped" }).waitFor({ timeout: 20_000 });
  // Signing out ended the sign-in in the store: the old cookie, replayed, is refused.
  await p.context().addCookies([cookie]);
  const replayed = await p.evaluate(async () => (await fetch("/v1/approvals")).status);
  expect(replayed === 401, `the signed-out cookie still works: ${replayed}`);
  say("STEP signed-out");
}

async function replay() {
  const p = await page();
  await signIn(p, "root");
  await p.goto(`${url}/#/sessions?protocol=ssh`);
  await p.locator("#sessions tbody tr a").first().click();
  await p.locator("#terminals .cast").first().waitFor();
  await p.locator("#terminals button.play").first().click();
  const marker = process.env.MARKER;
  await p.waitForFunction(
    (m) => document.querySelector("#terminals .player")?.textContent?.includes(m),
    marker,
    { timeout: 30_000 },
  );
  // Output of a command run without a terminal starts each line at the first column.
  await p.waitForFunction(() =>
    Array.from(document.querySelectorAll("#terminals .player .ap-line")).some((l) => l.textContent.startsWith("done")),
  );
  await shot(p, "12-replay");
  say(`STEP replayed ${marker}`);
}

try {
  if (scene === "inbox") await inbox();
  else if (scene === "replay") await replay();
  else throw new Error(`unknown scene ${scene}`);
  say("DONE");
} catch (e) {
  say(`FAIL ${e.message.replace(/\n/g, " ")}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
