# The Better Auth server of the tests and the demo
# (testdata/betterauth/server.mjs), for examples/compose. Build context: the
# repository root (compose.yaml sets it).

# Full node image for npm ci: better-sqlite3 falls back to compiling
# (python3, make, g++) where no prebuilt binary fits.
FROM node:20-bookworm AS deps
WORKDIR /app
COPY testdata/betterauth/package.json testdata/betterauth/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY testdata/betterauth/package.json testdata/betterauth/server.mjs ./
# The SQLite database lives in /data (a named volume in compose.yaml, which
# Docker fills from this folder, owner included, on first use).
RUN mkdir -p /data && chown node:node /data
USER node
ENV NODE_ENV=production \
	HOST=0.0.0.0 \
	PORT=3000 \
	DATABASE_FILE=/data/auth.sqlite
EXPOSE 3000
# Better Auth answers GET /api/auth/ok with {"ok":true}.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=5 \
	CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/api/auth/ok').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "server.mjs"]
