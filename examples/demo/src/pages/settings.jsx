import { authQueryKeys } from "@better-auth-ui/core"
import {
  useListAccounts,
  useListSessions,
  useSession
} from "@better-auth-ui/react"
import { useListApiKeys } from "@better-auth-ui/react/plugins/api-key"
import { useListDeviceSessions } from "@better-auth-ui/react/plugins/multi-session"
import { useListPasskeys } from "@better-auth-ui/react/plugins/passkey"
import { useQueryClient } from "@tanstack/react-query"
import { useEffect, useState } from "react"
import { authClient } from "../auth-client.js"
import { Link, signInPathFor, useLocation } from "../router.jsx"
import { errorText, formatDate, QueryList } from "./query-list.jsx"

// For browser tests: one entry per render of a data page, saying which
// queries already had data. With the sidecar's injected state the FIRST
// entry is all true; without it the first render is all false.
window.__renders = window.__renders || []

const apiKeysOf = (data) => (Array.isArray(data) ? data : data?.apiKeys ?? [])

export function SettingsPage() {
  const { pathname, search } = useLocation()
  const session = useSession(authClient)
  const sessions = useListSessions(authClient)
  const accounts = useListAccounts(authClient)
  const deviceSessions = useListDeviceSessions(authClient)
  const passkeys = useListPasskeys(authClient)
  const apiKeys = useListApiKeys(authClient)

  window.__renders.push({
    page: "settings",
    session: session.data !== undefined,
    sessions: sessions.data !== undefined,
    accounts: accounts.data !== undefined,
    deviceSessions: deviceSessions.data !== undefined,
    passkeys: passkeys.data !== undefined,
    apiKeys: apiKeys.data !== undefined,
    // parseJSON turned the ISO strings back into Dates, as the client would.
    datesParsed: session.data?.session?.expiresAt instanceof Date
  })

  const signedOut = session.data === null
  useEffect(() => {
    // The sidecar guards /settings/* on a page load; this covers arriving
    // here by a History API navigation after the session ended.
    if (signedOut) window.location.assign(signInPathFor(pathname, search))
  }, [signedOut, pathname, search])

  if (session.error) return <main><p className="error">{errorText(session.error)}</p></main>
  if (session.data === undefined) return <main><p className="muted">loading…</p></main>
  if (session.data === null) return <main><p className="muted">Signed out: going to sign-in…</p></main>

  const { user } = session.data
  const currentSessionId = session.data.session.id

  return (
    <main>
      <h1>Account</h1>
      <section className="card" data-testid="profile">
        <p>
          Name: <strong data-testid="user-name">{user.name}</strong>
        </p>
        <p>
          Email: <strong data-testid="user-email">{user.email}</strong>
        </p>
        <RenameForm key={user.name} name={user.name} />
        <SignOutButton />
      </section>

      <QueryList
        testid="sessions-list"
        title="Sessions"
        query={sessions}
        items={(data) => data}
        renderItem={(s) => (
          <li key={s.id}>
            {s.userAgent || "unknown device"} · since {formatDate(s.createdAt)}
            {s.id === currentSessionId && <em> (this one)</em>}
          </li>
        )}
      />

      <QueryList
        testid="accounts-list"
        title="Linked accounts"
        query={accounts}
        items={(data) => data}
        renderItem={(a) => <li key={a.id}>{a.providerId}</li>}
      />

      <QueryList
        testid="device-sessions-list"
        title="Accounts on this device"
        query={deviceSessions}
        items={(data) => data}
        renderItem={(d) => (
          <li key={d.session.id}>
            {d.user.name} &lt;{d.user.email}&gt;
          </li>
        )}
      />

      <QueryList
        testid="passkeys-list"
        title="Passkeys"
        query={passkeys}
        items={(data) => data}
        renderItem={(p) => <li key={p.id}>{p.name || p.id}</li>}
      />

      <QueryList
        testid="api-keys-list"
        title="API keys"
        query={apiKeys}
        items={apiKeysOf}
        renderItem={(k) => (
          <li key={k.id}>
            {k.name || "unnamed"} {k.start ? <code>{k.start}…</code> : null}
          </li>
        )}
      >
        <CreateApiKeyButton userId={user.id} count={apiKeysOf(apiKeys.data).length} />
      </QueryList>

      <p>
        <Link to="/orgs">Organizations →</Link>
      </p>
    </main>
  )
}

function RenameForm({ name: initialName }) {
  const queryClient = useQueryClient()
  const [name, setName] = useState(initialName)
  const [error, setError] = useState("")
  const [busy, setBusy] = useState(false)

  async function onSubmit(event) {
    event.preventDefault()
    setBusy(true)
    setError("")
    const { error } = await authClient.updateUser({ name })
    if (error) setError(errorText(error))
    // The name shows up in the session and in the device sessions.
    await queryClient.invalidateQueries({ queryKey: authQueryKeys.all })
    setBusy(false)
  }

  return (
    <form onSubmit={onSubmit} data-testid="rename-form" className="inline">
      <input
        name="name"
        aria-label="New name"
        required
        value={name}
        onChange={(e) => setName(e.target.value)}
      />
      <button type="submit" disabled={busy}>
        Rename
      </button>
      {error && <span className="error">{error}</span>}
    </form>
  )
}

function CreateApiKeyButton({ userId, count }) {
  const queryClient = useQueryClient()
  const [error, setError] = useState("")
  const [busy, setBusy] = useState(false)

  async function onClick() {
    setBusy(true)
    setError("")
    const { error } = await authClient.apiKey.create({ name: `demo key ${count + 1}` })
    if (error) setError(errorText(error))
    // Only the API key lists: ["auth", "user", <id>, "apiKey", ...].
    await queryClient.invalidateQueries({ queryKey: [...authQueryKeys.user(userId), "apiKey"] })
    setBusy(false)
  }

  return (
    <p>
      <button type="button" onClick={onClick} disabled={busy} data-testid="create-api-key">
        Create API key
      </button>
      {error && <span className="error"> {error}</span>}
    </p>
  )
}

function SignOutButton() {
  const [busy, setBusy] = useState(false)
  async function onClick() {
    setBusy(true)
    await authClient.signOut()
    // A full page load: the sidecar then serves sign-in with no session.
    window.location.assign("/auth/sign-in")
  }
  return (
    <button type="button" onClick={onClick} disabled={busy} data-testid="sign-out">
      Sign out
    </button>
  )
}
