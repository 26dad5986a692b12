# syntax=docker/dockerfile:1
# One image for every role: `serve` (API + in-process worker), `serve --no-worker` (API only), `worker`.

# --- build: all dependencies, TypeScript compiled to dist/, the dashboard bundled into dist/web ---
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Native modules (better-sqlite3) use their prebuilt binaries; the toolchain is the fallback when none fits.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY web ./web
COPY schemas ./schemas
RUN npm run build \
 && if [ ! -f dist/web/index.html ]; then npx tsx web/build.ts; fi

# --- runtime: production dependencies only, FFmpeg from Debian, non-root ---
FROM node:20-bookworm-slim AS runtime
# ffmpeg: ffmpeg and ffprobe; libxml2-utils: xmllint for the package check; tini: PID 1 that forwards
# SIGTERM to node and reaps any orphaned FFmpeg.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg libxml2-utils tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
# The toolchain is installed and removed in the same layer, so it never reaches the image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force \
 && apt-get purge -y --auto-remove python3 make g++ \
 && rm -rf /var/lib/apt/lists/* /root/.cache /tmp/*
COPY --from=build /app/dist ./dist
COPY schemas ./schemas

# The image's `node` user (uid 1000) owns the data directory; nothing runs as root.
RUN mkdir -p /data/input /data/output /data/state && chown -R node:node /data
USER node
ENV HOST=0.0.0.0 \
    PORT=8080 \
    INPUT_DIR=/data/input \
    OUTPUT_DIR=/data/output \
    STATE_DIR=/data/state
VOLUME ["/data"]
EXPOSE 8080

# /healthz answers while the HTTP server runs (a `worker` serves it when METRICS_PORT=PORT: see docker-compose.yml).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# SIGTERM gives running tasks SHUTDOWN_GRACE_SECONDS (30) to finish: run with `--stop-timeout 45` (compose:
# stop_grace_period), or Docker's 10 s default kills them first.
ENTRYPOINT ["/usr/bin/tini", "--", "node", "dist/cli/main.js"]
CMD ["serve"]
