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
# being promoted, ~10 % less CPU per QoS 1 message (issue 11 bench); same flags as `npm start`.
CMD ["node", "--max-semi-space-size=32", "--import", "tsx", "gateway/src/main.ts"]
