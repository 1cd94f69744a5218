// Checks docs/openapi.yaml (as served at /v1/openapi.json) against a running endpoint: the
// document with @seriousme/openapi-schema-validator (OpenAPI 3.1), then every documented
// route and response: each case below makes one request, and its answer's status, media
// type, headers and body must match what the document says (bodies with Ajv, JSON Schema
// 2020-12, the dialect of OpenAPI 3.1). A documented (method, path, status) that no case
// reaches fails the check, and so does a case the document does not describe.
//
// Environment: HD_NPM_DIR (where the pinned packages are installed), BASE (http://ADDR:PORT),
// TOKEN, HERALD_PID (the engine, stopped for the draining cases), SLOW_HOST (a host with a
// request in flight that does not finish, so that the drain lasts).
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const require = createRequire(process.env.HD_NPM_DIR + "/package.json");
const Ajv2020 = require("ajv/dist/2020").default;
const addFormats = require("ajv-formats").default;
const { Validator } = await import(
  pathToFileURL(require.resolve("@seriousme/openapi-schema-validator")).href
);

const BASE = process.env.BASE, TOKEN = process.env.TOKEN;
const auth = { Authorization: `Bearer ${TOKEN}` };
let failures = 0;
const fail = (msg) => { console.error(`FAIL: ${msg}`); failures++; };

async function req(method, path, { headers = {}, body } = {}) {
  const r = await fetch(BASE + path, { method, headers, body, signal: AbortSignal.timeout(10000) });
  const text = await r.text();
  return { status: r.status, headers: r.headers, text };
}

// ---- the document
const doc = await req("GET", "/v1/openapi.json");
if (doc.status !== 200) throw new Error(`/v1/openapi.json answered ${doc.status}`);
const spec = JSON.parse(doc.text);
const validator = new Validator();
const vres = await validator.validate(structuredClone(spec));
if (!vres.valid) {
  console.error(JSON.stringify(vres.errors, null, 1));
  throw new Error("the OpenAPI document is not valid");
}
console.log(`PASS: the served document is valid OpenAPI ${validator.version}`);

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
const ID = "https://herald.invalid/openapi.json";
ajv.addSchema({ ...spec, $id: ID });
const ptr = (parts) => parts.map((p) => String(p).replaceAll("~", "~0").replaceAll("/", "~1")).join("/");
const deref = (o) => {
  while (o && o.$ref) {
    o = o.$ref.slice(2).split("/").map((p) => p.replaceAll("~1", "/").replaceAll("~0", "~"))
      .reduce((x, k) => x[k], spec);
  }
  return o;
};
// A schema inside the document, by where it sits (so that its "#/components/..." resolve).
const schemaAt = (parts) => ajv.compile({ $ref: `${ID}#/${ptr(parts)}` });

const documented = new Set();
for (const [path, item] of Object.entries(spec.paths))
  for (const [method, op] of Object.entries(item))
    for (const status of Object.keys(op.responses)) documented.add(`${method.toUpperCase()} ${path} ${status}`);
const covered = new Set();

async function check(method, path, opts, want, extra) {
  const route = path.split("?")[0];
  const key = `${method} ${route} ${want}`;
  const r = await req(method, path, opts);
  if (r.status !== want) return fail(`${key}: answered ${r.status}: ${r.text.slice(0, 200)}`);
  const op = spec.paths[route]?.[method.toLowerCase()];
  const resp = deref(op?.responses?.[String(want)]);
  if (!resp) return fail(`${key}: not in the document`);
  covered.add(key);
  const ctype = (r.headers.get("content-type") || "").split(";")[0].trim();
  const media = Object.keys(resp.content || {});
  if (media.length && !media.includes(ctype)) return fail(`${key}: Content-Type ${ctype}, documented ${media}`);
  for (const [name, h] of Object.entries(resp.headers || {})) {
    const v = r.headers.get(name);
    const hs = deref(h).schema;
    if (v === null) { fail(`${key}: header ${name} missing`); continue; }
    const ok = ajv.compile(hs)(v);
    if (!ok) fail(`${key}: header ${name}: ${v}`);
  }
  if (media.length) {
    const base = resp === op.responses[String(want)]
      ? ["paths", route, method.toLowerCase(), "responses", String(want)]
      : op.responses[String(want)].$ref.slice(2).split("/");
    const validate = schemaAt([...base, "content", ctype, "schema"]);
    let body = r.text;
    if (ctype === "application/json") {
      try { body = JSON.parse(r.text); } catch { return fail(`${key}: body is not JSON`); }
    }
    if (!validate(body)) return fail(`${key}: body does not match: ${ajv.errorsText(validate.errors)}: ${r.text.slice(0, 300)}`);
  }
  if (extra) {
    const why = extra(r);
    if (why) return fail(`${key}: ${why}`);
  }
  console.log(`PASS: ${key}`);
}

const act = (id, inboxes) => JSON.stringify({
  activity: { "@context": "https://www.w3.org/ns/activitystreams", id: `https://social.example/act/${id}`,
    type: "Create", actor: "https://social.example/users/alice",
    to: ["https://www.w3.org/ns/activitystreams#Public"],
    object: { id: `https://social.example/notes/${id}`, type: "Note", content: "hi" } },
  inboxes }) + "\n";
const closed = process.env.CLOSED_PORT;
const nd = { ...auth, "Content-Type": "application/x-ndjson" };
const follow = JSON.stringify({ actor: "https://social.example/users/alice",
  follower: "https://h1.test/users/f1", inbox: `http://h1.test:${closed}/users/f1/inbox` }) + "\n";
const unfollow = JSON.stringify({ actor: "https://social.example/users/alice",
  follower: "https://h1.test/users/f1" }) + "\n";

// ---- views and files
await check("GET", "/", {}, 200, (r) => /https?:\/\//.test(r.text) ? "the page names an external URL"
  : !/default-src 'none'/.test(r.headers.get("content-security-policy") || "") ? "no Content-Security-Policy"
  : r.headers.get("cache-control") !== "no-store" ? "cacheable" : null);
await check("GET", "/dashboard.js", {}, 200, (r) => /\bhttps?:\/\//.test(r.text) ? "the script names an external URL" : null);
await check("GET", "/dashboard.css", {}, 200, (r) => /url\(/.test(r.text) ? "the style sheet loads something" : null);
await check("GET", "/v1/openapi.json", {}, 200);
await check("GET", "/metrics", {}, 200);
await check("GET", "/healthz", {}, 200, (r) => r.text === "ok\n" ? null : `not ok: ${r.text}`);
await check("GET", "/v1/hosts", {}, 200);
await check("GET", "/v1/hosts?limit=1", { headers: auth }, 200, (r) => JSON.parse(r.text).hosts.length === 1 ? null : "limit=1 not honoured");
await check("GET", "/v1/hosts", { headers: { Authorization: "Bearer wrong" } }, 401);
await new Promise((res) => setTimeout(res, 2200)); // two rate samples
await check("GET", "/v1/rates", { headers: auth }, 200, (r) => JSON.parse(r.text).done_per_s.length >= 1 ? null : "no samples after 2 s");
await check("GET", "/v1/rates", {}, 401);

// ---- activities (the queue holds 9 at the start; --max-queued 12)
await check("POST", "/v1/activities", { headers: { "Content-Type": "application/x-ndjson" }, body: act("o1", [`http://h1.test:${closed}/inbox`]) }, 401);
await check("POST", "/v1/activities", { headers: nd, body: act("o1", [`http://h1.test:${closed}/inbox`]) }, 202);
await check("POST", "/v1/activities", { headers: nd, body: act("o1", [`http://h1.test:${closed}/inbox`]) }, 200);
await check("POST", "/v1/activities", { headers: nd, body: "{\"activity\": 5}\n" }, 400,
  (r) => JSON.parse(r.text).refused === 1 ? null : "refused != 1");
await check("POST", "/v1/activities", { headers: nd, body: "" }, 400);
await check("POST", "/v1/activities", { headers: nd, body: "{}\n".repeat(10001) }, 413);
await check("POST", "/v1/activities", { headers: { ...auth, "Content-Type": "application/json" },
  body: act("o2", [`http://h1.test:${closed}/inbox`, `http://h2.test:${closed}/inbox`]) }, 202);
await check("POST", "/v1/activities", { headers: nd, body: act("o3", [`http://h1.test:${closed}/inbox`]) }, 429);

// ---- follows
await check("POST", "/v1/follows", { headers: nd, body: follow }, 200, (r) => JSON.parse(r.text).added === 1 ? null : "added != 1");
await check("POST", "/v1/follows", { headers: nd, body: "{\"actor\": 1}\n" }, 400);
await check("POST", "/v1/follows", { body: follow }, 401);
await check("DELETE", "/v1/follows", { headers: nd, body: unfollow }, 200, (r) => JSON.parse(r.text).removed === 1 ? null : "removed != 1");
await check("DELETE", "/v1/follows", { headers: nd, body: "[]\n" }, 400);
await check("DELETE", "/v1/follows", { body: unfollow }, 401);

// ---- draining: a request to SLOW_HOST is in flight, so the drain lasts
let inflight = 0;
for (let i = 0; i < 100 && !inflight; i++) {
  const h = JSON.parse((await req("GET", "/v1/hosts")).text).hosts.find((x) => x.host === process.env.SLOW_HOST);
  inflight = h ? h.in_flight : 0;
  if (!inflight) await new Promise((res) => setTimeout(res, 100));
}
if (!inflight) fail(`no request in flight to ${process.env.SLOW_HOST}: cannot check draining`);
process.kill(Number(process.env.HERALD_PID), "SIGTERM");
for (let i = 0; i < 50; i++) {
  const h = await req("GET", "/healthz");
  if (h.text === "draining\n") break;
  await new Promise((res) => setTimeout(res, 100));
}
await check("GET", "/healthz", {}, 200, (r) => r.text === "draining\n" ? null : `not draining: ${r.text}`);
await check("POST", "/v1/activities", { headers: nd, body: act("o4", [`http://h1.test:${closed}/inbox`]) }, 503);
await check("POST", "/v1/follows", { headers: nd, body: follow }, 503);

for (const k of documented) if (!covered.has(k)) fail(`documented but not checked: ${k}`);
if (failures) {
  console.error(`${failures} failure(s)`);
  process.exit(1);
}
console.log(`PASS: ${covered.size} documented responses of ${Object.keys(spec.paths).length} routes match the running endpoint`);
