# sitegate gateway image. The TypeScript runs through tsx (no build step); the face models ship in
# models/, the regulators' live page in dashboards/live/. test/image.e2e.test.ts lays this file's
# tree out and starts its CMD on every CI run.

# Build stage: production dependencies. better-sqlite3 compiles from source when no prebuilt
# binary matches, so this stage carries the compiler; the runtime stage does not.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund

# Runtime stage: node, the production node_modules and what the gateway reads at run time.
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production SITEGATE_DATA_DIR=/data
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY gateway ./gateway
COPY schemas ./schemas
COPY models ./models
COPY dashboards ./dashboards
RUN mkdir -p /data && chown node:node /data
VOLUME /data
EXPOSE 8080 1883 8083
USER node
HEALTHCHECK --interval=10s --timeout=3s --retries=5 CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Exec form: SIGTERM reaches node itself and the gateway shuts down cleanly. A 32 MiB semi-space:
# the ingest path's short-lived objects (packets, parsed payloads, records) die young instead of
# being promoted, ~10 % less CPU per QoS 1 message (issue 11 bench). --single-threaded-gc: on 2
# cores V8's GC helper threads compete with the gateway's own threads (ledger writer, hazard
# engine) and cost more in hand-offs than they save: 2–5 µs less CPU per QoS 1 message in three
# A/B pairs (issue 11, fifth round). Same flags as `npm start`.
CMD ["node", "--max-semi-space-size=32", "--single-threaded-gc", "--import", "tsx", "gateway/src/main.ts"]
