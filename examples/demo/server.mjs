// A dependency-free static server for dist/: files as they are, and
// index.html for every path without a file extension (client-side routes).
// HOST and PORT from the environment (default 127.0.0.1:5173).
import { createReadStream } from "node:fs"
import { stat } from "node:fs/promises"
import { createServer } from "node:http"
import { dirname, extname, join, normalize, sep } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "dist")
const host = process.env.HOST || "127.0.0.1"
const port = Number(process.env.PORT || 5173)

const types = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8"
}

function send(res, status, body) {
  res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8" })
  res.end(body)
}

async function serveFile(req, res, file) {
  const info = await stat(file)
  if (!info.isFile()) throw Object.assign(new Error("not a file"), { code: "ENOENT" })
  res.writeHead(200, {
    "Content-Type": types[extname(file)] || "application/octet-stream",
    "Content-Length": info.size,
    // index.html is the same for everyone (the sidecar adds the per-user
    // part); assets are rebuilt in place, so revalidate both.
    "Cache-Control": "no-cache"
  })
  if (req.method === "HEAD") return res.end()
  createReadStream(file).pipe(res)
}

const server = createServer(async (req, res) => {
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.setHeader("Allow", "GET, HEAD")
    return send(res, 405, "method not allowed\n")
  }
  let pathname
  try {
    pathname = decodeURIComponent(new URL(req.url, "http://x").pathname)
  } catch {
    return send(res, 400, "bad request\n")
  }
  const hasExtension = extname(pathname) !== ""
  const file = hasExtension ? normalize(join(root, pathname)) : join(root, "index.html")
  if (file !== root && !file.startsWith(root + sep)) return send(res, 404, "not found\n")
  try {
    await serveFile(req, res, file)
  } catch (error) {
    if (error.code === "ENOENT" || error.code === "EISDIR" || error.code === "ENOTDIR") {
      return send(res, 404, "not found\n")
    }
    console.error(error)
    if (!res.headersSent) send(res, 500, "internal error\n")
    else res.destroy()
  }
})

server.on("error", (error) => {
  console.error(`frontend: cannot listen on ${host}:${port}: ${error.message}`)
  process.exit(1)
})

server.listen(port, host, () => {
  const address = server.address()
  const shown = address.family === "IPv6" ? `[${address.address}]` : address.address
  console.log(`frontend ready http://${shown}:${address.port}`)
})

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => server.close(() => process.exit(0)))
}
