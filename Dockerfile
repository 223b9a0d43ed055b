# The production image of cldpd: `serve`, `worker` or `up` (default).
# Build: docker build -t cldpd .    Run: see docker-compose.yml
# Node 24: an LTS line supported until 2028-04-30 (Node 20's support ended 2026-04-30,
# Node 22's ends 2027-04-30); test/core/production-image.test.ts fails once it is past.
# The code keeps to what Node 20.12 has (package.json "engines"), so a CLI on an older host still runs.

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/bundle.mjs ./scripts/
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    CLDPD_HOME=/data \
    CLDPD_PODS_DIR=/pods
WORKDIR /app
# redis-server only serves `up` without REDIS_URL (the single-machine default).
RUN apt-get update && apt-get install -y --no-install-recommends redis-server tini \
    && rm -rf /var/lib/apt/lists/* && mkdir -p /data /pods && chown node:node /data
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json app.yml ./
USER node
EXPOSE 3000
VOLUME ["/data"]
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/dist/main/cldpd.js"]
CMD ["up"]
