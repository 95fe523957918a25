// Checks the demo's hydration recipe without the sidecar: dist/ is served
// with a hand-written __BETTER_AUTH_STATE__ block (keys as Better Auth UI
// builds them, hashed by TanStack's own hashKey), headless Chromium loads
// the page, and the page must render the data on its first render without
// asking /api/auth for anything.
//
// Run: npm run build && npm test (needs Chromium: CHROME_BIN, or chromium on PATH).
import assert from "node:assert/strict"
import { spawn, spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { createServer } from "node:http"
import { tmpdir } from "node:os"
import { dirname, extname, join } from "node:path"
import { after, before, test } from "node:test"
import { fileURLToPath } from "node:url"
import { hashKey } from "@tanstack/query-core"

const dist = join(dirname(fileURLToPath(import.meta.url)), "..", "dist")
const chrome = process.env.CHROME_BIN || "chromium"
const haveChrome = spawnSync(chrome, ["--version"], { stdio: "ignore" }).status === 0
const skip = !haveChrome ? `no Chromium (${chrome})` : !existsSync(join(dist, "app.js")) ? "run npm run build first" : false

const now = Date.now()
const iso = (ms) => new Date(ms).toISOString()
const uid = "user_1"
// Strings that would break the page if the state or the app mishandled them.
const user = { id: uid, name: "Zoë </script><b>x</b> & \u2028 O'Neil", email: "zoe@example.com", emailVerified: false, image: null, createdAt: iso(now - 86_400_000), updatedAt: iso(now - 3_600_000) }
const session = { id: "sess_1", token: "tok_1", userId: uid, expiresAt: iso(now + 604_800_000), createdAt: iso(now - 3_600_000), updatedAt: iso(now - 3_600_000), ipAddress: "127.0.0.1", userAgent: "HeadlessChrome", activeOrganizationId: "org_1" }
const org = { id: "org_1", name: "Acme <Corp>", slug: "acme", logo: null, metadata: null, createdAt: iso(now), members: [], invitations: [] }
const member = { id: "mem_1", organizationId: "org_1", userId: uid, role: "owner", createdAt: iso(now), user: { id: uid, name: user.name, email: user.email, image: null } }

function entry(queryKey, data) {
  return {
    queryKey,
    queryHash: hashKey(queryKey),
    dehydratedAt: now,
    state: { data, dataUpdateCount: 1, dataUpdatedAt: now - 1000, error: null, errorUpdateCount: 0, errorUpdatedAt: 0, fetchFailureCount: 0, fetchFailureReason: null, fetchMeta: null, isInvalidated: false, status: "success", fetchStatus: "idle" }
  }
}

function stateFor(pathname) {
  const u = (...rest) => ["auth", "user", uid, ...rest]
  const queries = [entry(["auth", "getSession"], { session, user })]
  if (pathname.startsWith("/settings/")) {
    queries.push(
      entry(u("listSessions", null), [session]),
      entry(u("listAccounts", null), [{ id: "acc_1", accountId: uid, providerId: "credential", userId: uid, scopes: [], createdAt: iso(now), updatedAt: iso(now) }]),
      entry(u("multiSession", "list", null), [{ session, user }]),
      entry(u("passkey", "list", null), []),
      entry(u("apiKey", "list", null), { apiKeys: [{ id: "key_1", name: "first <key>", start: "abc", createdAt: iso(now) }], total: 1 })
    )
  }
  if (pathname === "/orgs/acme") {
    queries.push(
      entry(u("organization", "active", { organizationSlug: "acme" }), org),
      entry(u("organization", "members", "list", { organizationId: "org_1" }), { members: [member], total: 1 })
    )
  }
  return { mutations: [], queries }
}

// What the sidecar does: JSON with <, >, &, U+2028 and U+2029 escaped.
const htmlSafe = (json) => json.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)

// Writes what the page saw into the DOM for --dump-dom to carry out.
const probe = `<script>
addEventListener("error", (e) => (window.__errors ||= []).push(String(e.message)))
setTimeout(() => { const p = document.createElement("pre"); p.id = "probe"; p.textContent = JSON.stringify({ renders: window.__renders, requests: window.__authRequests, errors: window.__errors || [] }); document.body.append(p) }, 1500)
</script>`

let server
let origin
const apiCalls = []

before(async () => {
  if (skip) return
  server = createServer((req, res) => {
    const url = new URL(req.url, "http://localhost")
    if (url.pathname.startsWith("/api/auth/")) {
      apiCalls.push(`${req.method} ${url.pathname}`)
      res.writeHead(200, { "content-type": "application/json" })
      return res.end(url.pathname === "/api/auth/get-session" ? "null" : "[]")
    }
    if (extname(url.pathname)) {
      const file = join(dist, url.pathname)
      if (!file.startsWith(dist) || !existsSync(file)) return res.writeHead(404).end()
      res.writeHead(200, { "content-type": url.pathname.endsWith(".js") ? "text/javascript" : "text/css" })
      return res.end(readFileSync(file))
    }
    const mode = url.searchParams.get("state")
    let block = ""
    if (mode !== "none") {
      const json = mode === "broken" ? '{"queries":[' : htmlSafe(JSON.stringify(stateFor(url.pathname)))
      block = `<script type="application/json" id="__BETTER_AUTH_STATE__">${json}</script>`
    }
    const html = readFileSync(join(dist, "index.html"), "utf8").replace("<head>", `<head>${block}`).replace("</body>", `${probe}</body>`)
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" })
    res.end(html)
  })
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve))
  origin = `http://127.0.0.1:${server.address().port}`
})

after(() => server?.close())

async function load(path) {
  apiCalls.length = 0
  const profile = mkdtempSync(join(tmpdir(), "demo-chrome-"))
  try {
    const child = spawn(chrome, [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run",
      `--user-data-dir=${profile}`, "--virtual-time-budget=4000", "--dump-dom", origin + path
    ], { stdio: ["ignore", "pipe", "ignore"] })
    let dom = ""
    child.stdout.on("data", (d) => (dom += d))
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000)
    await new Promise((resolve) => child.on("close", resolve))
    clearTimeout(timer)
    const m = /<pre id="probe">(.*?)<\/pre>/s.exec(dom)
    assert.ok(m, `no probe in the page of ${path}`)
    const decode = (s) => s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&amp;/g, "&")
    return { dom, probe: JSON.parse(decode(m[1])), apiCalls: [...apiCalls] }
  } finally {
    rmSync(profile, { recursive: true, force: true })
  }
}

const testid = (dom, id) => new RegExp(`data-testid="${id}"([^>]*)>([^<]*)<`).exec(dom)

test("settings renders the injected data on its first render, with no request", { skip }, async () => {
  const { dom, probe, apiCalls } = await load("/settings/account")
  assert.deepEqual(probe.errors, [])
  assert.deepEqual(probe.renders[0], { page: "settings", session: true, sessions: true, accounts: true, deviceSessions: true, passkeys: true, apiKeys: true, datesParsed: true })
  assert.deepEqual(probe.requests, [])
  assert.deepEqual(apiCalls, [])
  assert.equal(testid(dom, "user-name")[2], "Zoë &lt;/script&gt;&lt;b&gt;x&lt;/b&gt; &amp; \u2028 O'Neil")
  assert.equal(testid(dom, "user-email")[2], "zoe@example.com")
  for (const [id, count] of [["sessions-list", 1], ["accounts-list", 1], ["device-sessions-list", 1], ["passkeys-list", 0], ["api-keys-list", 1]]) {
    assert.match(testid(dom, id)[1], new RegExp(`data-state="ready" data-count="${count}"`), id)
  }
})

test("an organization page renders org and members on its first render", { skip }, async () => {
  const { dom, probe, apiCalls } = await load("/orgs/acme")
  assert.deepEqual(probe.errors, [])
  assert.deepEqual(probe.renders[0], { page: "org", session: true, activeOrganization: true, members: true })
  assert.deepEqual(apiCalls, [])
  assert.equal(testid(dom, "org-name")[2], "Acme &lt;Corp&gt;")
  assert.match(testid(dom, "members-list")[1], /data-count="1"/)
})

test("home shows the user from the injected session", { skip }, async () => {
  const { dom, apiCalls } = await load("/")
  assert.deepEqual(apiCalls, [])
  assert.equal(testid(dom, "session-status")[2], "signed in")
})

test("without a state block the hooks fetch for themselves", { skip }, async () => {
  const { dom, apiCalls } = await load("/?state=none")
  assert.deepEqual(apiCalls, ["GET /api/auth/get-session"])
  assert.equal(testid(dom, "session-status")[2], "signed out")
})

test("an unreadable state block is ignored", { skip }, async () => {
  const { dom, probe, apiCalls } = await load("/?state=broken")
  assert.deepEqual(probe.errors, [])
  assert.deepEqual(apiCalls, ["GET /api/auth/get-session"])
  assert.equal(testid(dom, "session-status")[2], "signed out")
})
