// One list fed by one Better Auth UI query hook. The container carries
// data-state (loading | error | ready) and, once ready, data-count, for tests.
export function QueryList({ testid, title, query, items, renderItem, children }) {
  const state = query.error ? "error" : query.data === undefined ? "loading" : "ready"
  const list = state === "ready" ? items(query.data) : []
  return (
    <section
      className="card"
      data-testid={testid}
      data-state={state}
      data-count={state === "ready" ? list.length : undefined}
    >
      <h2>
        {title}
        {state === "ready" && <span className="count"> ({list.length})</span>}
      </h2>
      {state === "loading" && <p className="muted">loading…</p>}
      {state === "error" && (
        <p className="error">{errorText(query.error)}</p>
      )}
      {state === "ready" && list.length === 0 && <p className="muted">none</p>}
      {list.length > 0 && <ul>{list.map(renderItem)}</ul>}
      {children}
    </section>
  )
}

export function errorText(error) {
  if (!error) return ""
  // A BetterFetchError carries Better Auth's answer ({ code, message }) in
  // .error; its own message is only the HTTP status text.
  return error.error?.message || error.message || error.statusText || String(error.status || "error")
}

export function formatDate(value) {
  if (value instanceof Date) return value.toLocaleString()
  return value == null ? "" : String(value)
}
