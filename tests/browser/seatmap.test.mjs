// The seat-map page in a real browser (Debian's chromium, driven by playwright-core; no
// browser is downloaded): two visitors race for one seat and exactly one gets it; the winner
// sees the countdown and buys; the other sees the seat sold, then holds the best block; a
// screenshot is taken and checked. Runs `ticketctl serve` on a fresh SQLite file.
//
//   TICKETCTL=target/debug/ticketctl CHROMIUM=/usr/bin/chromium node tests/browser/seatmap.test.mjs
//
// SCREENSHOT=path keeps a copy of the screenshot.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = fileURLToPath(new URL(".", import.meta.url));
const ticketctl = process.env.TICKETCTL ?? join(here, "../../target/debug/ticketctl");
const browserPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const token = "browser-test-token";
const dir = mkdtempSync(join(tmpdir(), "seatmap-"));
const screenshot = join(dir, "seatmap.png");

// Everything here is bounded: the whole test stops itself after two minutes.
const deadline = setTimeout(() => {
  console.error("seatmap test: over two minutes, giving up");
  process.exit(1);
}, 120_000);

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, check, ms = 10_000) {
  const end = Date.now() + ms;
  for (;;) {
    const got = await check();
    if (got) return got;
    if (Date.now() > end) throw new Error("timed out waiting for " + what);
    await sleep(100);
  }
}

const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const server = spawn(ticketctl, ["serve"], {
  env: {
    ...process.env,
    DATABASE_URL: `sqlite://${join(dir, "tickets.db")}`,
    BIND_ADDR: `127.0.0.1:${port}`,
    ADMIN_TOKEN: token,
    RESERVATION_TTL_SECONDS: "120",
    LOG_FORMAT: "json",
  },
  stdio: ["ignore", "ignore", "pipe"],
});
let serverLog = "";
server.stderr.on("data", (d) => { serverLog += d; });

async function api(method, path, body, admin = false) {
  const headers = { "Content-Type": "application/json" };
  if (admin) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(base + path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  return { status: res.status, body: await res.json() };
}

let browser;
let failed = false;
try {
  await until("the server", async () => {
    try { return (await fetch(base + "/health")).ok; } catch { return false; }
  }, 30_000);
  const event = (await api("POST", "/api/events", { name: "Browser hall", capacity: 1 }, true)).body.id;
  const rows = ["1", "2", "3"].map((name) => ({ name, seats: 8 }));
  const loaded = await api("PUT", `/api/events/${event}/seats`, { sections: [{ name: "A", rows }] }, true);
  assert.equal(loaded.status, 200, JSON.stringify(loaded.body));

  browser = await chromium.launch({
    executablePath: browserPath,
    headless: true,
    // CI runs as root, where chromium's sandbox cannot start.
    args: ["--no-sandbox"],
  });
  const visitors = await Promise.all([browser.newContext(), browser.newContext()]);
  const pages = await Promise.all(visitors.map((c) => c.newPage()));
  await Promise.all(pages.map((p) => p.goto(`${base}/events/${event}/seatmap`)));
  await Promise.all(pages.map((p) => p.waitForSelector('[data-seat="A-1-4"]')));
  const title = await pages[0].textContent("#title");
  assert.equal(title, "Browser hall");

  // Both pick A-1-4 and hold at once: exactly one gets it.
  await Promise.all(pages.map((p) => p.click('[data-seat="A-1-4"]')));
  await Promise.all(pages.map((p) => p.click("#hold")));
  const messages = await Promise.all(pages.map((p) =>
    until("an answer on the page", async () => {
      const text = await p.textContent("#message");
      return text && text.length > 0 ? text : null;
    })));
  const won = messages.map((m) => m.startsWith("Held A-1-4"));
  assert.equal(won.filter(Boolean).length, 1, `exactly one visitor holds the seat: ${JSON.stringify(messages)}`);
  const loser = won.indexOf(false);
  const winner = won.indexOf(true);
  assert.match(messages[loser], /Taken already: A-1-4/);
  const map = (await api("GET", `/api/events/${event}/seats`)).body;
  assert.equal(map.sections[0].rows[0].status, "FFFHFFFF");
  assert.equal((await api("GET", `/api/events/${event}`)).body.reserved, 1);

  // The winner sees the countdown and buys; the other page shows the seat sold.
  const countdown = await until("the countdown", async () => {
    const text = await pages[winner].textContent("#countdown");
    return /expires in \d+:\d\d/.test(text ?? "") ? text : null;
  });
  assert.ok(countdown);
  await pages[winner].click("#purchase");
  await until("the purchase", async () =>
    (await pages[winner].textContent("#message"))?.startsWith("Purchased A-1-4"));
  // Told by the event's stream: well before the page's 5-second fallback refresh.
  await until("the sold seat on the other page", async () =>
    (await pages[loser].getAttribute('[data-seat="A-1-4"]', "data-status")) === "S", 3_000);

  // The other visitor asks for the best three together.
  await pages[loser].fill("#quantity", "3");
  await pages[loser].click("#best");
  const best = await until("the best block", async () => {
    const text = await pages[loser].textContent("#message");
    return text?.startsWith("Held ") ? text : null;
  });
  const seats = best.replace(/^Held /, "").replace(/\.$/, "").split(", ");
  assert.equal(seats.length, 3, best);
  const places = seats.map((s) => Number(s.split("-")[2]));
  assert.ok(seats.every((s) => s.startsWith("A-1-")) && places[1] === places[0] + 1 && places[2] === places[1] + 1, best);
  await until("the held block on the first page", async () =>
    (await pages[winner].getAttribute(`[data-seat="${seats[0]}"]`, "data-status")) === "H");

  await pages[loser].screenshot({ path: screenshot, fullPage: true });
  const png = readFileSync(screenshot);
  assert.equal(png.subarray(1, 4).toString(), "PNG");
  const [width, height] = [png.readUInt32BE(16), png.readUInt32BE(20)];
  const bytes = statSync(screenshot).size;
  assert.ok(width >= 400 && height >= 300 && bytes > 10_000, `screenshot ${width}x${height}, ${bytes} bytes`);
  if (process.env.SCREENSHOT) copyFileSync(screenshot, process.env.SCREENSHOT);
  console.log(`seatmap test: ok — one of two visitors got A-1-4, bought it; best 3 = ${seats.join(", ")}; screenshot ${width}x${height}, ${bytes} bytes`);
} catch (err) {
  failed = true;
  console.error("seatmap test failed:", err);
  console.error(serverLog.split("\n").slice(-20).join("\n"));
} finally {
  if (browser) await browser.close();
  server.kill("SIGTERM");
  rmSync(dir, { recursive: true, force: true });
  clearTimeout(deadline);
}
process.exit(failed ? 1 : 0);
