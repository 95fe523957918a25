import { apiKeyClient } from "@better-auth/api-key/client"
import { passkeyClient } from "@better-auth/passkey/client"
import { createAuthClient } from "better-auth/client"
import {
  multiSessionClient,
  organizationClient
} from "better-auth/client/plugins"

// Every request the client sends to Better Auth, as "METHOD /path", so that a
// browser test can tell whether the page asked for data it already had.
window.__authRequests = []

// The page and Better Auth share one origin (the sidecar serves both), so the
// default base path /api/auth on this origin is where the API lives.
export const authClient = createAuthClient({
  baseURL: window.location.origin,
  plugins: [
    multiSessionClient(),
    organizationClient(),
    passkeyClient(),
    apiKeyClient()
  ],
  fetchOptions: {
    onRequest(context) {
      const url = new URL(context.url, window.location.origin)
      window.__authRequests.push(
        `${(context.method || "GET").toUpperCase()} ${url.pathname}`
      )
    }
  }
})
