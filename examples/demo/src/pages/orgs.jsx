import { useSession } from "@better-auth-ui/react"
import {
  useActiveOrganization,
  useListOrganizationMembers,
  useListOrganizations
} from "@better-auth-ui/react/plugins/organization"
import { useEffect, useState } from "react"
import { authClient } from "../auth-client.js"
import { Link, signInPathFor, useLocation } from "../router.jsx"
import { errorText, QueryList } from "./query-list.jsx"

window.__renders = window.__renders || []

function useRequireSession() {
  const { pathname, search } = useLocation()
  const session = useSession(authClient)
  const signedOut = session.data === null
  useEffect(() => {
    if (signedOut) window.location.assign(signInPathFor(pathname, search))
  }, [signedOut, pathname, search])
  return session
}

function slugify(name) {
  return name
    .toLowerCase()
    .normalize("NFKD")
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
}

// /orgs: the user's organizations and a form that creates one, makes it the
// active organization and opens its page with a full load.
export function OrgsPage() {
  const session = useRequireSession()
  const organizations = useListOrganizations(authClient)
  if (!session.data) return <main><p className="muted">loading…</p></main>
  return (
    <main>
      <h1>Organizations</h1>
      <QueryList
        testid="organizations-list"
        title="Your organizations"
        query={organizations}
        items={(data) => data}
        renderItem={(o) => (
          <li key={o.id}>
            <a href={`/orgs/${encodeURIComponent(o.slug)}`}>{o.name}</a> <code>{o.slug}</code>
          </li>
        )}
      />
      <CreateOrganizationForm />
    </main>
  )
}

function CreateOrganizationForm() {
  const [name, setName] = useState("")
  const [slug, setSlug] = useState("")
  const [slugEdited, setSlugEdited] = useState(false)
  const [error, setError] = useState("")
  const [busy, setBusy] = useState(false)

  async function onSubmit(event) {
    event.preventDefault()
    setBusy(true)
    setError("")
    const created = await authClient.organization.create({ name, slug })
    if (created.error) {
      setError(errorText(created.error))
      setBusy(false)
      return
    }
    const active = await authClient.organization.setActive({
      organizationId: created.data.id
    })
    if (active.error) {
      setError(errorText(active.error))
      setBusy(false)
      return
    }
    window.location.assign(`/orgs/${encodeURIComponent(created.data.slug)}`)
  }

  return (
    <form onSubmit={onSubmit} className="card" data-testid="create-org-form">
      <h2>Create an organization</h2>
      <label>
        Name
        <input
          name="name"
          required
          value={name}
          onChange={(e) => {
            setName(e.target.value)
            if (!slugEdited) setSlug(slugify(e.target.value))
          }}
        />
      </label>
      <label>
        Slug
        <input
          name="slug"
          required
          pattern="[a-z0-9]+(-[a-z0-9]+)*"
          title="lower-case letters and digits, words joined by -"
          value={slug}
          onChange={(e) => {
            setSlug(e.target.value)
            setSlugEdited(true)
          }}
        />
      </label>
      <button type="submit" disabled={busy}>
        Create and open
      </button>
      {error && (
        <p className="error" role="alert" data-testid="form-error">
          {error}
        </p>
      )}
    </form>
  )
}

// /orgs/<slug>: the organization plugin on AuthProvider carries the slug (see
// app.jsx), so both hooks below resolve to it:
//   useActiveOrganization      key [..., "organization", "active", { organizationSlug }]
//   useListOrganizationMembers key [..., "organization", "members", "list", { organizationId }]
// where organizationId is the id of the active organization above.
export function OrgPage({ slug }) {
  const session = useRequireSession()
  const organization = useActiveOrganization(authClient)
  const members = useListOrganizationMembers(authClient)

  window.__renders.push({
    page: "org",
    session: session.data !== undefined,
    activeOrganization: organization.data !== undefined,
    members: members.data !== undefined
  })

  if (!session.data) return <main><p className="muted">loading…</p></main>

  let heading
  if (organization.error) {
    heading = <p className="error" data-testid="org-error">{errorText(organization.error)}</p>
  } else if (organization.data === undefined) {
    heading = <p className="muted">loading…</p>
  } else if (organization.data === null) {
    heading = <p data-testid="org-error">No organization “{slug}”.</p>
  } else {
    heading = (
      <h1>
        <span data-testid="org-name">{organization.data.name}</span>{" "}
        <code data-testid="org-slug">{organization.data.slug}</code>
      </h1>
    )
  }

  return (
    <main>
      {heading}
      {organization.data && (
        <QueryList
          testid="members-list"
          title="Members"
          query={members}
          items={(data) => (Array.isArray(data) ? data : data?.members ?? [])}
          renderItem={(m) => (
            <li key={m.id} data-testid="member">
              {m.user?.name} &lt;{m.user?.email}&gt; · {m.role}
            </li>
          )}
        />
      )}
      <p>
        <Link to="/orgs">All organizations</Link>
      </p>
    </main>
  )
}
