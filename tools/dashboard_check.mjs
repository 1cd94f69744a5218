// Drives the dashboard (GET /) in headless Chromium through chromedriver (W3C WebDriver over
// HTTP, Debian's chromium and chromium-driver; no npm package): types the token into the
// form, checks that it stays out of the URL and sits in sessionStorage, that the page shows
// the hosts of the running fan-out and updates (a second fan-out posted meanwhile shows in
// its totals), the chart, sorting, filtering and the virtual rows over many hosts, that a
// wrong token brings the form back, and saves a screenshot.
//
// Environment: DRIVER (http://127.0.0.1:PORT of chromedriver), BASE (the endpoint), TOKEN,
// PROFILE_DIR (Chromium's profile), SHOT (the PNG to write), HOSTS (hosts of the fan-out,
// h1..hHOSTS.fedi.test), MANY (hosts in all, the fan-out's and the failing ones), MORE (a
// file of JSON lines to post as the second fan-out), FANOUT (deliveries of both fan-outs).
import { readFileSync, writeFileSync } from "node:fs";

const { DRIVER, BASE, TOKEN, PROFILE_DIR, SHOT, MORE } = process.env;
const HOSTS = Number(process.env.HOSTS), MANY = Number(process.env.MANY);
let sid = null;

async function wd(method, path, body) {
  const r = await fetch(DRIVER + path, {
    method, headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(60000),
  });
  const j = await r.json();
  if (!r.ok) throw new Error(`${method} ${path}: ${JSON.stringify(j.value).slice(0, 400)}`);
  return j.value;
}
const s = (p) => `/session/${sid}${p}`;
const js = (script, ...args) => wd("POST", s("/execute/sync"), { script, args });
const el = async (css) => Object.values(await wd("POST", s("/element"), { using: "css selector", value: css }))[0];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, fn, ms = 90000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}`);
}
const t0 = Date.now();
const pass = (m) => console.log(`PASS: ${m} [${((Date.now() - t0) / 1000).toFixed(1)} s]`);

try {
  sid = (await wd("POST", "/session", { capabilities: { alwaysMatch: { browserName: "chrome",
    "goog:chromeOptions": { binary: "/usr/bin/chromium", args: ["--headless=new", "--no-sandbox",
      "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1500,1100",
      `--user-data-dir=${PROFILE_DIR}`, "--no-first-run", "--no-default-browser-check"] } } } })).sessionId;
  await wd("POST", s("/url"), { url: BASE + "/" });
  await until("the token form", () => js("return !document.getElementById('login').hidden"));
  await wd("POST", s(`/element/${await el("#token")}/value`), { text: TOKEN });
  await wd("POST", s(`/element/${await el("#open")}/click`), {});
  const url = await wd("GET", s("/url"));
  if (url.includes(TOKEN) || url !== BASE + "/") throw new Error(`the URL changed: ${url}`);
  if ((await js("return sessionStorage.getItem('herald.token')")) !== TOKEN) throw new Error("token not in sessionStorage");
  if ((await js("return localStorage.length + document.cookie.length")) !== 0) throw new Error("token kept beyond sessionStorage");
  pass("the token goes through the form into sessionStorage, not into the URL, a cookie or localStorage");

  // the hosts of the fan-out
  await until("a first update", () => js("return Number(document.body.dataset.updates || 0) >= 1"));
  const count = await until(`${MANY} hosts in the table`, async () => {
    const t = await js("return document.getElementById('count').textContent");
    return t.endsWith(`of ${MANY.toLocaleString("en-US")} hosts`) ? t : null;
  }, 60000);
  await js("const f = document.getElementById('filter'); f.value = 'fedi.test'; f.dispatchEvent(new Event('input'))");
  const shown = await js("return document.getElementById('count').textContent");
  if (!shown.startsWith(`${HOSTS} of`)) throw new Error(`filter fedi.test: ${shown}`);
  await js("document.getElementById('viewport').scrollTop = 0");
  const sortHost = await js("const h = [...document.querySelectorAll('#thead > div')].find((d) => d.dataset.key === 'host'); h.click(); return true");
  const names = await until("rows sorted by host", async () => {
    const n = await js("return [...document.querySelectorAll('#rows .row')].map((r) => r.dataset.host)");
    return n.length && n[0] === "h1.fedi.test" ? n : null;
  });
  const sorted = [...names].sort((a, b) => a.localeCompare(b));
  if (!sortHost || names.join() !== sorted.join()) throw new Error(`not sorted by host: ${names.slice(0, 5)}`);
  pass(`the table shows the fan-out's ${HOSTS} hosts (${count}); filter and sort by host work`);

  // it updates: a second fan-out posted now shows in the totals
  const before = await js("return [Number(document.body.dataset.delivered), Number(document.body.dataset.updates)]");
  const more = readFileSync(MORE);
  const r = await fetch(BASE + "/v1/activities", { method: "POST", body: more,
    headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/x-ndjson" } });
  if (r.status !== 202) throw new Error(`second fan-out: ${r.status}`);
  const want = Number(process.env.FANOUT); // both fan-outs delivered
  const after = await until(`delivered to reach ${want}`, async () => {
    const v = await js("return [Number(document.body.dataset.delivered), Number(document.body.dataset.updates), document.getElementById('total-delivered').firstChild.textContent, Number(document.getElementById('chart').dataset.points)]");
    return v[0] >= want && v[1] >= before[1] + 2 ? v : null; // reached, and redrawn since
  }, 90000);
  if (after[1] < before[1] + 2 || !(after[3] >= 2)) throw new Error(`updates ${before[1]} -> ${after[1]}, chart points ${after[3]}`);
  pass(`the page updates: delivered ${before[0]} -> ${after[0]} (shown as ${after[2]}), ${after[1] - before[1]} polls, ${after[3]} chart points`);
  const rate = await js("return [...document.querySelectorAll('#rows .row')].find((r) => r.dataset.host === 'h1.fedi.test').children[1].textContent");
  if (rate !== "0") throw new Error(`h1 backlog after the fan-out: ${rate}`);

  // many hosts: the failing ones, virtual rows, sort and filter timed in the page
  await js("const f = document.getElementById('filter'); f.value = ''; f.dispatchEvent(new Event('input'))");
  const t = await js(`const t0 = performance.now();
    const h = [...document.querySelectorAll('#thead > div')].find((d) => d.dataset.key === 'err5m'); h.click();
    const t1 = performance.now();
    const f = document.getElementById('failing'); f.checked = true; f.dispatchEvent(new Event('change'));
    const t2 = performance.now();
    return [t1 - t0, t2 - t1, document.querySelectorAll('#rows .row').length,
            document.getElementById('count').textContent,
            document.querySelector('#rows .row').children[9].textContent];`);
  if (t[2] > 150) throw new Error(`${t[2]} row elements for ${MANY} hosts: rows are not virtual`);
  if (!t[3].startsWith(`${(MANY - HOSTS).toLocaleString("en-US")} of`)) throw new Error(`failing only: ${t[3]}`);
  if (!/^connect \d+/.test(t[4])) throw new Error(`errors by class of the first failing row: ${t[4]}`);
  await js("document.getElementById('viewport').scrollTop = 1e9");
  await sleep(300);
  const tail = await js("return [...document.querySelectorAll('#rows .row')].length");
  if (tail < 5 || tail > 150) throw new Error(`rows at the bottom: ${tail}`);
  pass(`${MANY} hosts: ${t[2]} row elements in the page; sort by errors ${t[0].toFixed(0)} ms, failing-only filter ${t[1].toFixed(0)} ms (measured in the page); errors by class shown ("${t[4]}")`);
  await js("document.getElementById('failing').checked = false; document.getElementById('failing').dispatchEvent(new Event('change')); document.getElementById('viewport').scrollTop = 0; [...document.querySelectorAll('#thead > div')].find((d) => d.dataset.key === 'rate').click()");
  await sleep(2500);
  const png = await wd("GET", s("/screenshot"));
  writeFileSync(SHOT, Buffer.from(png, "base64"));
  console.log(`screenshot: ${SHOT}`);

  // a wrong token: the engine refuses it and the form comes back
  await wd("POST", s(`/element/${await el("#forget")}/click`), {});
  if ((await js("return sessionStorage.getItem('herald.token')")) !== null) throw new Error("forget kept the token");
  await wd("POST", s(`/element/${await el("#token")}/value`), { text: "not-the-token" });
  await wd("POST", s(`/element/${await el("#open")}/click`), {});
  const msg = await until("the refusal", () => js("const e = document.getElementById('login-error'); return !document.getElementById('login').hidden && e.textContent"));
  if ((await js("return sessionStorage.getItem('herald.token')")) !== null) throw new Error("a refused token stayed");
  pass(`a wrong token is refused and forgotten ("${msg}")`);
} finally {
  if (sid) await wd("DELETE", `/session/${sid}`).catch(() => {});
}
