import { organizationPlugin } from "@better-auth-ui/core/plugins/organization"
import { AuthProvider, useSession } from "@better-auth-ui/react"
import { useMemo } from "react"
import { authClient } from "./auth-client.js"
import { SignInPage, SignUpPage } from "./pages/auth.jsx"
import { HomePage } from "./pages/home.jsx"
import { OrgPage, OrgsPage } from "./pages/orgs.jsx"
import { SettingsPage } from "./pages/settings.jsx"
import { queryClient } from "./query-client.js"
import { Link, navigate, useLocation } from "./router.jsx"

// AuthProvider wants a navigate({ to, replace }) for its own redirects; keep it
// one stable function so the provider's config is not rebuilt on every render.
const navigateForAuth = ({ to, replace }) => navigate(to, { replace })

// "/orgs/acme/..." -> "acme". Decoded like Caddy's {http.request.uri.path.1}
// (which reads the decoded URL path), so the sidecar and the hooks agree.
function orgSlugFromPath(pathname) {
  const match = /^\/orgs\/([^/]+)/.exec(pathname)
  if (!match) return undefined
  try {
    return decodeURIComponent(match[1])
  } catch {
    return match[1]
  }
}

export function App() {
  const { pathname } = useLocation()
  const orgSlug = orgSlugFromPath(pathname)

  // The organization plugin's `slug` is how Better Auth UI scopes
  // useActiveOrganization to a route: with a slug it asks
  // get-full-organization?organizationSlug=<slug> and keys the query
  // [..., "organization", "active", { organizationSlug: <slug> }]. Without one
  // (undefined) it falls back to the session's active organization.
  const plugins = useMemo(
    () => [organizationPlugin({ slug: orgSlug })],
    [orgSlug]
  )

  return (
    <AuthProvider
      authClient={authClient}
      queryClient={queryClient}
      navigate={navigateForAuth}
      plugins={plugins}
    >
      <Header />
      <Page pathname={pathname} orgSlug={orgSlug} />
    </AuthProvider>
  )
}

function Page({ pathname, orgSlug }) {
  if (pathname === "/") return <HomePage />
  if (pathname === "/auth/sign-in") return <SignInPage />
  if (pathname === "/auth/sign-up") return <SignUpPage />
  if (pathname === "/settings" || pathname.startsWith("/settings/")) {
    return <SettingsPage />
  }
  if (pathname === "/orgs" || pathname === "/orgs/") return <OrgsPage />
  if (orgSlug !== undefined) return <OrgPage key={orgSlug} slug={orgSlug} />
  return (
    <main>
      <h1>Not found</h1>
      <p>
        <Link to="/">Home</Link>
      </p>
    </main>
  )
}

function Header() {
  const { data: session } = useSession(authClient)
  return (
    <header className="top">
      <nav>
        <Link to="/">Home</Link>
        <Link to="/settings/account">Account</Link>
        <Link to="/orgs">Organizations</Link>
      </nav>
      <span className="who">
        {session ? session.user.email : session === null ? "signed out" : ""}
      </span>
    </header>
  )
}
