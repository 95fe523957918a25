import { QueryClient } from "@tanstack/react-query"

// 30 s: data the sidecar injected was fetched at most its own cache time
// before the page was served (dataUpdatedAt is that honest fetch time), and
// the bundle still has to load before the hooks mount. The client's staleTime
// must cover both, or a hook refetches on mount what the page already holds.
// Mutations in this app invalidate what they change, so a longer staleTime
// never shows the user their own stale edits.
export const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      staleTime: 30_000
    }
  }
})
