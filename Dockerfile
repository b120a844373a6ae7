# sitegate gateway image: the TypeScript runs through tsx (no build step), models ship in models/.
FROM node:20-bookworm-slim
WORKDIR /app
# better-sqlite3 compiles from source when no prebuilt binary matches.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY gateway ./gateway
COPY schemas ./schemas
COPY models ./models
COPY tsconfig.json ./
RUN mkdir -p /data && chown node:node /data
ENV SITEGATE_DATA_DIR=/data
VOLUME /data
EXPOSE 8080 1883 8083
USER node
CMD ["node", "--import", "tsx", "gateway/src/main.ts"]
