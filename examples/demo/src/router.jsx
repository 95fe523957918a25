import { useSyncExternalStore } from "react"

// A tiny History API router: the location is an external store, links push
// onto history, and the server answers index.html for every page path.
const listeners = new Set()

function subscribe(listener) {
  listeners.add(listener)
  window.addEventListener("popstate", listener)
  return () => {
    listeners.delete(listener)
    window.removeEventListener("popstate", listener)
  }
}

function snapshot() {
  return window.location.pathname + window.location.search
}

export function navigate(to, { replace = false } = {}) {
  if (replace) window.history.replaceState(null, "", to)
  else window.history.pushState(null, "", to)
  for (const listener of listeners) listener()
}

export function useLocation() {
  const href = useSyncExternalStore(subscribe, snapshot)
  const url = new URL(href, window.location.origin)
  return { pathname: url.pathname, search: url.search, searchParams: url.searchParams }
}

export function Link({ to, children, ...props }) {
  function onClick(event) {
    if (
      event.defaultPrevented ||
      event.button !== 0 ||
      event.metaKey ||
      event.ctrlKey ||
      event.shiftKey ||
      event.altKey
    ) {
      return
    }
    event.preventDefault()
    navigate(to)
  }
  return (
    <a href={to} onClick={onClick} {...props}>
      {children}
    </a>
  )
}

const DEFAULT_AFTER_SIGN_IN = "/settings/account"

// Where to go after signing in: the redirectTo parameter when it is a path on
// this origin ("/..." but not "//host" or "/\host", which browsers read as
// another host), else the account settings.
export function safeRedirectTo(value) {
  if (typeof value !== "string") return DEFAULT_AFTER_SIGN_IN
  if (!value.startsWith("/") || value.startsWith("//") || value.startsWith("/\\")) {
    return DEFAULT_AFTER_SIGN_IN
  }
  // The URL parser drops tabs and newlines ("/\t/evil.example" becomes
  // "//evil.example"), so check the origin of what the browser will open.
  try {
    const url = new URL(value, window.location.origin)
    if (url.origin !== window.location.origin) return DEFAULT_AFTER_SIGN_IN
    return url.pathname + url.search + url.hash
  } catch {
    return DEFAULT_AFTER_SIGN_IN
  }
}

export function signInPathFor(pathname, search) {
  return `/auth/sign-in?redirectTo=${encodeURIComponent(pathname + search)}`
}
