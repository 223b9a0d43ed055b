# The production image of cldpd: `serve`, `worker` or `up` (default).
# Build: docker build -t cldpd .    Run: see docker-compose.yml
# Node 24: an LTS line supported until 2028-04-30 (Node 20's support ended 2026-04-30,
# Node 22's ends 2027-04-30); test/core/production-image.test.ts fails once it is past.
# The code keeps to what Node 20.12 has (package.json "engines"), so a CLI on an older host still runs.
# BASE_IMAGE: any Debian bookworm image with Node (/usr/local/bin/node, npm) and a user
# `node` (uid 1000), as the official one has; scripts/production-image.sh builds from a
# local one (no registry), e.g. docker build --build-arg BASE_IMAGE=cldpd-test/node-base:20.20.2 .
ARG BASE_IMAGE=node:24-bookworm-slim

FROM ${BASE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/bundle.mjs ./scripts/
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM ${BASE_IMAGE}
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
