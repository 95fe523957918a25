# The demo frontend (examples/demo: a React app whose Better Auth UI hooks
# render from the state better_auth injects), built and served as static
# files by the demo's dependency-free server.mjs. Build context: the
# repository root (compose.yaml sets it). Any other frontend works the same
# way behind the sidecar: only FRONTEND_UPSTREAM changes.

FROM node:20-bookworm AS build
WORKDIR /app
COPY examples/demo/package.json examples/demo/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY examples/demo/build.mjs ./
COPY examples/demo/public ./public
COPY examples/demo/src ./src
RUN npm run build

FROM node:20-bookworm-slim
WORKDIR /app
COPY examples/demo/server.mjs ./
COPY --from=build /app/dist ./dist
USER node
ENV HOST=0.0.0.0 \
	PORT=5173
EXPOSE 5173
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=5 \
	CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||5173)+'/').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "server.mjs"]
