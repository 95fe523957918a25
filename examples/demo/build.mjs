// Bundles src/main.jsx into dist/app.js (+ dist/app.css) and copies
// public/ next to it. `node build.mjs --watch` rebuilds on change.
import { cp, mkdir, rm } from "node:fs/promises"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import * as esbuild from "esbuild"

const root = dirname(fileURLToPath(import.meta.url))
const dist = join(root, "dist")
const watch = process.argv.includes("--watch")

await rm(dist, { recursive: true, force: true })
await mkdir(dist, { recursive: true })
await cp(join(root, "public"), dist, { recursive: true })

const options = {
  absWorkingDir: root,
  entryPoints: { app: "src/main.jsx" },
  outdir: "dist",
  bundle: true,
  format: "iife",
  platform: "browser",
  target: ["es2022"],
  jsx: "automatic",
  minify: !watch,
  sourcemap: watch ? "inline" : false,
  legalComments: "none",
  define: { "process.env.NODE_ENV": JSON.stringify(watch ? "development" : "production") },
  logLevel: "info"
}

if (watch) {
  const context = await esbuild.context(options)
  await context.watch()
} else {
  await esbuild.build(options)
}
