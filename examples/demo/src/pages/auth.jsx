import { useSession } from "@better-auth-ui/react"
import { useState } from "react"
import { authClient } from "../auth-client.js"
import { Link, safeRedirectTo, useLocation } from "../router.jsx"

// After signing in or up, a full page load (not a History API push), so the
// sidecar serves the next page with the new session's data injected.
function useFinish() {
  const { searchParams } = useLocation()
  return () => window.location.assign(safeRedirectTo(searchParams.get("redirectTo")))
}

function AlreadySignedIn() {
  const { data: session } = useSession(authClient)
  if (!session) return null
  return (
    <p className="note">
      Already signed in as <strong>{session.user.email}</strong>.{" "}
      <Link to="/settings/account">Account settings</Link>
    </p>
  )
}

function withRedirect(path, searchParams) {
  const redirectTo = searchParams.get("redirectTo")
  return redirectTo ? `${path}?redirectTo=${encodeURIComponent(redirectTo)}` : path
}

export function SignInPage() {
  const { searchParams } = useLocation()
  const finish = useFinish()
  const [email, setEmail] = useState("")
  const [password, setPassword] = useState("")
  const [error, setError] = useState("")
  const [busy, setBusy] = useState(false)

  async function onSubmit(event) {
    event.preventDefault()
    setBusy(true)
    setError("")
    const { error } = await authClient.signIn.email({ email, password })
    if (error) {
      setError(error.message || error.statusText || "Sign-in failed")
      setBusy(false)
      return
    }
    finish()
  }

  return (
    <main>
      <h1>Sign in</h1>
      <AlreadySignedIn />
      <form onSubmit={onSubmit} data-testid="sign-in-form">
        <label>
          Email
          <input
            name="email"
            type="email"
            autoComplete="email"
            required
            value={email}
            onChange={(e) => setEmail(e.target.value)}
          />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autoComplete="current-password"
            required
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        {error && (
          <p className="error" role="alert" data-testid="form-error">
            {error}
          </p>
        )}
      </form>
      <p>
        No account? <Link to={withRedirect("/auth/sign-up", searchParams)}>Sign up</Link>
      </p>
    </main>
  )
}

export function SignUpPage() {
  const { searchParams } = useLocation()
  const finish = useFinish()
  const [name, setName] = useState("")
  const [email, setEmail] = useState("")
  const [password, setPassword] = useState("")
  const [error, setError] = useState("")
  const [busy, setBusy] = useState(false)

  async function onSubmit(event) {
    event.preventDefault()
    setBusy(true)
    setError("")
    const { error } = await authClient.signUp.email({ name, email, password })
    if (error) {
      setError(error.message || error.statusText || "Sign-up failed")
      setBusy(false)
      return
    }
    finish()
  }

  return (
    <main>
      <h1>Sign up</h1>
      <AlreadySignedIn />
      <form onSubmit={onSubmit} data-testid="sign-up-form">
        <label>
          Name
          <input
            name="name"
            autoComplete="name"
            required
            value={name}
            onChange={(e) => setName(e.target.value)}
          />
        </label>
        <label>
          Email
          <input
            name="email"
            type="email"
            autoComplete="email"
            required
            value={email}
            onChange={(e) => setEmail(e.target.value)}
          />
        </label>
        <label>
          Password (8 characters or more)
          <input
            name="password"
            type="password"
            autoComplete="new-password"
            minLength={8}
            required
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
        <button type="submit" disabled={busy}>
          Create account
        </button>
        {error && (
          <p className="error" role="alert" data-testid="form-error">
            {error}
          </p>
        )}
      </form>
      <p>
        Have an account? <Link to={withRedirect("/auth/sign-in", searchParams)}>Sign in</Link>
      </p>
    </main>
  )
}
