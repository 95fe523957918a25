import { hydrate } from "@tanstack/react-query"
import { parseJSON } from "better-auth/client"
import { createRoot } from "react-dom/client"
import { App } from "./app.jsx"
import { queryClient } from "./query-client.js"
import "./style.css"

// The sidecar put the page's auth data right after <head> as TanStack Query
// dehydrated state. Read it before the first render, with Better Auth's own
// parser (ISO date strings become Dates, as in the client's responses), so
// every Better Auth UI hook finds its data in the cache and sends nothing.
const el = document.getElementById("__BETTER_AUTH_STATE__")
if (el) {
  try {
    hydrate(queryClient, parseJSON(el.textContent))
  } catch (error) {
    // Unreadable state: the hooks fetch what they need, as without a sidecar.
    console.warn("ignoring __BETTER_AUTH_STATE__:", error)
  }
}

createRoot(document.getElementById("root")).render(<App />)
