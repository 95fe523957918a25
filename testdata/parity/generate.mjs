// Builds golden.json from fixtures.json by running the real server query
// helpers of @better-auth-ui/core against a stub Better Auth server and
// dehydrating the resulting TanStack Query cache.
//
//   npm ci && npm run generate     rewrite golden.json
//   npm run check                  exit 1 if golden.json is not up to date
//
// Output is deterministic: no timestamps, cases in fixtures.json order.

import assert from "node:assert/strict"
import { readFileSync, writeFileSync } from "node:fs"
import { isDeepStrictEqual } from "node:util"

import { QueryClient, dehydrate, hashKey } from "@tanstack/query-core"

// Server helpers (take the Better Auth server instance `auth`).
import {
  ensureAccountInfo,
  ensureListAccounts,
  ensureListSessions,
  ensureSessionServer
} from "@better-auth-ui/core/server"
import { ensureListApiKeys } from "@better-auth-ui/core/plugins/api-key/server"
import { ensureListDeviceSessions } from "@better-auth-ui/core/plugins/multi-session/server"
import {
  ensureActiveOrganization,
  ensureFullOrganization,
  ensureHasPermission,
  ensureListOrganizationInvitations,
  ensureListOrganizationMembers,
  ensureListOrganizations,
  ensureListUserInvitations
} from "@better-auth-ui/core/plugins/organization/server"
import { ensureListPasskeys } from "@better-auth-ui/core/plugins/passkey/server"

// Client option factories (what the @better-auth-ui/react hooks wrap), used
// only to cross-check the key the browser computes for the same params.
import {
  accountInfoOptions as clientAccountInfoOptions,
  listAccountsOptions as clientListAccountsOptions,
  listSessionsOptions as clientListSessionsOptions,
  sessionOptions as clientSessionOptions
} from "@better-auth-ui/core"
import { listApiKeysOptions as clientListApiKeysOptions } from "@better-auth-ui/core/plugins/api-key"
import { listDeviceSessionsOptions as clientListDeviceSessionsOptions } from "@better-auth-ui/core/plugins/multi-session"
import {
  activeOrganizationOptions as clientActiveOrganizationOptions,
  fullOrganizationOptions as clientFullOrganizationOptions,
  hasPermissionOptions as clientHasPermissionOptions,
  listOrganizationInvitationsOptions as clientListOrganizationInvitationsOptions,
  listOrganizationMembersOptions as clientListOrganizationMembersOptions,
  listOrganizationsOptions as clientListOrganizationsOptions,
  listUserInvitationsOptions as clientListUserInvitationsOptions,
  resolveActiveOrganizationQuery
} from "@better-auth-ui/core/plugins/organization"
import { listPasskeysOptions as clientListPasskeysOptions } from "@better-auth-ui/core/plugins/passkey"

const here = (p) => new URL(p, import.meta.url)
const readJSON = (p) => JSON.parse(readFileSync(here(p), "utf8"))
const version = (pkg) =>
  `${pkg}@${readJSON(`./node_modules/${pkg}/package.json`).version}`

const fixtures = readJSON("./fixtures.json")
const userId = fixtures.session.user.id
// The client hooks for members / invitations / has-permission fill a missing
// organizationId from useActiveOrganization's data; with no slug setting that
// is the session's active organization.
const clientActiveOrganizationId = fixtures.session.session.activeOrganizationId

// ISO-8601 timestamps come back from auth.api as Date objects (the real
// server helpers store Dates; dehydrated JSON turns them into ISO strings).
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/
function reviveDates(value) {
  if (typeof value === "string") {
    if (ISO.test(value)) {
      const d = new Date(value)
      if (!Number.isNaN(d.getTime()) && d.toISOString() === value) return d
    }
    return value
  }
  if (Array.isArray(value)) return value.map(reviveDates)
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, reviveDates(v)])
    )
  }
  return value
}

const API_METHODS = [
  "getSession",
  "listUserAccounts",
  "accountInfo",
  "listSessions",
  "listDeviceSessions",
  "listPasskeys",
  "listApiKeys",
  "getFullOrganization",
  "listOrganizations",
  "listMembers",
  "listInvitations",
  "listUserInvitations",
  "hasPermission"
]

function stubAuth(data, calls) {
  const api = {}
  for (const method of API_METHODS) {
    api[method] = async (args) => {
      calls.push({ method, args })
      return reviveDates(structuredClone(data))
    }
  }
  return { api }
}

// family -> how the server helper is called, and how the client computes its key.
// `q` is the params object (or undefined), `slug` the organization plugin's slug
// setting (only meaningful for active_organization).
const FAMILIES = {
  session: {
    server: (qc, auth, args) => ensureSessionServer(qc, auth, args),
    client: (q) => clientSessionOptions({}, { query: q }).queryKey
  },
  list_accounts: {
    server: (qc, auth, args) => ensureListAccounts(qc, auth, userId, args),
    client: (q) => clientListAccountsOptions({}, userId, { query: q }).queryKey
  },
  account_info: {
    server: (qc, auth, args) => ensureAccountInfo(qc, auth, userId, args),
    client: (q) => clientAccountInfoOptions({}, userId, { query: q }).queryKey
  },
  list_sessions: {
    server: (qc, auth, args) => ensureListSessions(qc, auth, userId, args),
    client: (q) => clientListSessionsOptions({}, userId, { query: q }).queryKey
  },
  list_device_sessions: {
    server: (qc, auth, args) =>
      ensureListDeviceSessions(qc, auth, userId, args),
    client: (q) =>
      clientListDeviceSessionsOptions({}, userId, { query: q }).queryKey
  },
  list_passkeys: {
    server: (qc, auth, args) => ensureListPasskeys(qc, auth, userId, args),
    client: (q) => clientListPasskeysOptions({}, userId, { query: q }).queryKey
  },
  list_api_keys: {
    server: (qc, auth, args) => ensureListApiKeys(qc, auth, userId, args),
    client: (q) => clientListApiKeysOptions({}, userId, { query: q }).queryKey
  },
  active_organization: {
    // useActiveOrganization: query = resolveActiveOrganizationQuery(query, slug)
    resolve: (q, slug) => resolveActiveOrganizationQuery(q, slug),
    server: (qc, auth, args) =>
      ensureActiveOrganization(qc, auth, userId, args),
    client: (q, slug) =>
      clientActiveOrganizationOptions({}, userId, {
        fetchOptions: undefined,
        query: resolveActiveOrganizationQuery(q, slug)
      }).queryKey
  },
  full_organization: {
    server: (qc, auth, args) => ensureFullOrganization(qc, auth, userId, args),
    client: (q) =>
      clientFullOrganizationOptions({}, userId, { query: q }).queryKey
  },
  list_organizations: {
    server: (qc, auth, args) => ensureListOrganizations(qc, auth, userId, args),
    client: (q) =>
      clientListOrganizationsOptions({}, userId, { query: q }).queryKey
  },
  list_organization_members: {
    server: (qc, auth, args) =>
      ensureListOrganizationMembers(qc, auth, userId, args),
    // useListOrganizationMembers
    client: (q) =>
      clientListOrganizationMembersOptions({}, userId, {
        query: {
          ...q,
          organizationId: q?.organizationId ?? clientActiveOrganizationId
        }
      }).queryKey
  },
  list_organization_invitations: {
    server: (qc, auth, args) =>
      ensureListOrganizationInvitations(qc, auth, userId, args),
    // useListOrganizationInvitations
    client: (q) =>
      clientListOrganizationInvitationsOptions({}, userId, {
        query: {
          ...q,
          organizationId: q?.organizationId ?? clientActiveOrganizationId
        }
      }).queryKey
  },
  list_user_invitations: {
    server: (qc, auth, args) =>
      ensureListUserInvitations(qc, auth, userId, args),
    client: (q) =>
      clientListUserInvitationsOptions({}, userId, { query: q }).queryKey
  },
  has_permission: {
    // flat params go to the endpoint as the JSON body
    body: true,
    server: (qc, auth, args) => ensureHasPermission(qc, auth, userId, args),
    // useHasPermission
    client: (q) =>
      clientHasPermissionOptions({}, userId, {
        fetchOptions: undefined,
        organizationId: q?.organizationId ?? clientActiveOrganizationId,
        permissions: q?.permissions
      }).queryKey
  }
}

const json = (v) => JSON.parse(JSON.stringify(v))

function stateTemplate(dq) {
  const t = json(dq)
  assert.equal(typeof t.dehydratedAt, "number")
  assert.equal(typeof t.state.dataUpdatedAt, "number")
  t.dehydratedAt = "<ms since epoch>"
  t.state.dataUpdatedAt = "<ms since epoch>"
  t.state.data = "<data>"
  t.queryKey = "<queryKey>"
  t.queryHash = "<queryHash>"
  return t
}

async function runCase(c) {
  const family = FAMILIES[c.family]
  assert.ok(family, `${c.name}: unknown family ${c.family}`)
  assert.ok(
    c.params === null || (typeof c.params === "object" && !Array.isArray(c.params)),
    `${c.name}: params must be an object or null`
  )
  const hasSlug = Object.hasOwn(c, "slug")
  assert.ok(!hasSlug || c.family === "active_organization", `${c.name}: slug only for active_organization`)

  const params = c.params === null ? undefined : structuredClone(c.params)
  const query = family.resolve ? family.resolve(params, c.slug) : params

  const headers = new Headers({
    cookie: "better-auth.session_token=parity-token.parity-signature"
  })
  const args = { headers }
  if (query !== undefined) args[family.body ? "body" : "query"] = query

  const calls = []
  const queryClient = new QueryClient()
  const result = await family.server(queryClient, stubAuth(c.data, calls), args)

  assert.equal(calls.length, 1, `${c.name}: expected one auth.api call`)
  const [{ method, args: calledWith }] = calls
  assert.equal(calledWith.headers, headers, `${c.name}: headers not forwarded`)
  const { headers: _h, ...apiArgs } = calledWith

  const dehydrated = dehydrate(queryClient)
  assert.equal(dehydrated.queries.length, 1, `${c.name}: expected one query`)
  assert.equal(dehydrated.mutations.length, 0)
  const dq = dehydrated.queries[0]
  assert.equal(dq.state.status, "success")
  assert.equal(dq.queryHash, hashKey(dq.queryKey))
  assert.equal(result, dq.state.data)

  const out = json({
    queryKey: dq.queryKey,
    queryHash: dq.queryHash,
    data: dq.state.data
  })
  // No helper transforms the endpoint's answer.
  assert.ok(isDeepStrictEqual(out.data, json(c.data)), `${c.name}: data changed`)

  const clientKey = family.client(params, c.slug)
  const clientQueryHash = hashKey(clientKey)

  const golden = {
    name: c.name,
    family: c.family,
    params: c.params,
    ...(hasSlug && { slug: c.slug }),
    queryKey: out.queryKey,
    queryHash: out.queryHash,
    data: out.data,
    apiMethod: method,
    apiArgs: json(apiArgs),
    clientQueryHash,
    clientMatchesServer: clientQueryHash === out.queryHash,
    ...(c.note !== undefined && { note: c.note })
  }
  return { golden, template: stateTemplate(dq) }
}

async function main() {
  const names = new Set()
  const cases = []
  let template
  for (const c of fixtures.cases) {
    assert.ok(!names.has(c.name), `duplicate case name ${c.name}`)
    names.add(c.name)
    const r = await runCase(c)
    if (template === undefined) template = r.template
    else assert.deepEqual(r.template, template, `${c.name}: state shape differs`)
    cases.push(r.golden)
  }
  for (const f of Object.keys(FAMILIES)) {
    assert.ok(cases.some((c) => c.family === f), `no case for family ${f}`)
  }

  const golden = {
    generatedBy: `generate.mjs: ${version("@better-auth-ui/core")} server helpers, ${version("@tanstack/query-core")} dehydrate/hashKey`,
    userId,
    clientActiveOrganizationId,
    dehydratedQueryTemplate: template,
    cases
  }
  const text = `${JSON.stringify(golden, null, 2)}\n`

  if (process.argv.includes("--check")) {
    let current = ""
    try {
      current = readFileSync(here("./golden.json"), "utf8")
    } catch {}
    if (current !== text) {
      console.error("golden.json is out of date: run `npm run generate`")
      process.exit(1)
    }
    console.log(`golden.json is up to date (${cases.length} cases)`)
    return
  }
  writeFileSync(here("./golden.json"), text)
  const mismatches = cases.filter((c) => !c.clientMatchesServer)
  console.log(
    `wrote golden.json: ${cases.length} cases; client key differs from server-helper key in ${mismatches.length}: ${mismatches.map((c) => c.name).join(", ")}`
  )
}

await main()
