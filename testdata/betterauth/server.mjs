// A real Better Auth server, for the caddy-better-auth tests and the demo.
//
// Run: npm ci && node server.mjs
//
// Configuration (all from the environment, all optional):
//   PORT                port to listen on (default 3000)
//   HOST                address to listen on (default 127.0.0.1)
//   BETTER_AUTH_URL     base URL Better Auth believes it is served from
//                       (default http://localhost:$PORT); the base path is
//                       always /api/auth
//   TRUSTED_ORIGINS     comma-separated origins allowed to POST with a cookie
//                       (default: the origin of BETTER_AUTH_URL)
//   BETTER_AUTH_SECRET  signing secret (default: a fixed dev-only secret; this
//                       server is for tests and demos only)
//   DATABASE_FILE       SQLite file (default ./data/auth.sqlite next to this
//                       script; its folder is created)
//   SESSION_EXPIRES_IN  session lifetime in seconds (default 604800 = 7 days)
//   SESSION_UPDATE_AGE  seconds after which get-session refreshes the session
//                       (default 86400 = 1 day)
//   RATE_LIMIT          "off" disables Better Auth's rate limit (the tests send
//                       many requests from 127.0.0.1); default on
//   AUTO_VERIFY_EMAIL   "true": new users are created with emailVerified=true
//                       (default false)
//
// Plugins: multiSession, organization, passkey, apiKey. Email and password
// sign-up is enabled, signs the user in, and needs no email verification.
// Migrations run at start.
//
// Stdout carries exactly one line, "better-auth ready http://HOST:PORT", once
// the server listens; everything else (logs, errors) goes to stderr.
// SIGTERM / SIGINT close the server and the database and exit 0.

import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import Database from "better-sqlite3";
import { betterAuth } from "better-auth";
import { toNodeHandler } from "better-auth/node";
import { getMigrations } from "better-auth/db/migration";
import { multiSession, organization } from "better-auth/plugins";
import { passkey } from "@better-auth/passkey";
import { apiKey } from "@better-auth/api-key";

// Keep stdout for the ready line only: anything a library logs goes to stderr.
const toStderr = (...args) => console.error(...args);
console.log = toStderr;
console.info = toStderr;
console.debug = toStderr;

const here = path.dirname(fileURLToPath(import.meta.url));
const env = process.env;

function intFromEnv(name, def) {
  const raw = env[name];
  if (raw === undefined || raw === "") return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  }
  return n;
}

const port = intFromEnv("PORT", 3000);
const host = env.HOST || "127.0.0.1";
const baseURL = (env.BETTER_AUTH_URL || `http://localhost:${port}`).replace(/\/+$/, "");
const baseOrigin = new URL(baseURL).origin;
const trustedOrigins = (env.TRUSTED_ORIGINS || baseOrigin)
  .split(",")
  .map((s) => s.trim())
  .filter(Boolean);
// Dev-only secret, for tests and the demo. Never use it for anything real.
const secret = env.BETTER_AUTH_SECRET || "caddy-better-auth-dev-only-secret-for-tests-0123456789";
const databaseFile = path.resolve(here, env.DATABASE_FILE || "./data/auth.sqlite");
const sessionExpiresIn = intFromEnv("SESSION_EXPIRES_IN", 604800);
const sessionUpdateAge = intFromEnv("SESSION_UPDATE_AGE", 86400);
const rateLimitEnabled = (env.RATE_LIMIT || "").toLowerCase() !== "off";
const autoVerifyEmail = (env.AUTO_VERIFY_EMAIL || "").toLowerCase() === "true";

fs.mkdirSync(path.dirname(databaseFile), { recursive: true });
const db = new Database(databaseFile);
db.pragma("journal_mode = WAL");

const auth = betterAuth({
  baseURL,
  basePath: "/api/auth",
  secret,
  database: db,
  trustedOrigins,
  emailAndPassword: {
    enabled: true,
    autoSignIn: true,
    requireEmailVerification: false,
  },
  session: {
    expiresIn: sessionExpiresIn,
    updateAge: sessionUpdateAge,
  },
  rateLimit: { enabled: rateLimitEnabled },
  telemetry: { enabled: false },
  logger: {
    disableColors: true,
    log: (level, message, ...args) => console.error(`[better-auth] ${level}: ${message}`, ...args),
  },
  databaseHooks: autoVerifyEmail
    ? {
        user: {
          create: {
            before: async (user) => ({ data: { ...user, emailVerified: true } }),
          },
        },
      }
    : undefined,
  plugins: [
    multiSession(),
    organization(),
    passkey({
      rpID: new URL(baseURL).hostname,
      rpName: "caddy-better-auth test",
      origin: baseOrigin,
    }),
    apiKey(),
  ],
});

const { runMigrations } = await getMigrations(auth.options);
await runMigrations();

const server = http.createServer(toNodeHandler(auth));

server.on("error", (err) => {
  console.error("better-auth server error:", err);
  process.exit(1);
});

server.listen(port, host, () => {
  const addr = server.address();
  const shownHost = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  process.stdout.write(`better-auth ready http://${shownHost}:${addr.port}\n`);
});

let closing = false;
function shutdown(signal) {
  if (closing) return;
  closing = true;
  console.error(`better-auth: ${signal}, shutting down`);
  // Do not wait for idle keep-alive connections.
  server.closeAllConnections?.();
  server.close(() => {
    try {
      db.close();
    } catch (err) {
      console.error("closing database:", err);
    }
    process.exit(0);
  });
  // Never hang on shutdown.
  setTimeout(() => process.exit(0), 3000).unref();
}
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));
