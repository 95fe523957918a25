import { useSession } from "@better-auth-ui/react"
import { authClient } from "../auth-client.js"
import { Link } from "../router.jsx"

export function HomePage() {
  const { data: session, isPending, error } = useSession(authClient)

  let status
  if (isPending) status = <span data-testid="session-status">loading…</span>
  else if (error) status = <span data-testid="session-status">error: {error.message}</span>
  else if (session) {
    status = (
      <>
        <span data-testid="session-status">signed in</span> as{" "}
        <strong data-testid="user-name">{session.user.name}</strong>
      </>
    )
  } else status = <span data-testid="session-status">signed out</span>

  return (
    <main>
      <h1>caddy-better-auth demo</h1>
      <p>{status}</p>
      <ul>
        <li>
          <a href="/auth/sign-in">Sign in</a> · <a href="/auth/sign-up">Sign up</a>
        </li>
        <li>
          <a href="/settings/account">Account settings</a> (guarded, prefetched)
        </li>
        <li>
          <Link to="/orgs">Organizations</Link>
        </li>
      </ul>
    </main>
  )
}
