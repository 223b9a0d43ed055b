# The production image of cldpd: `serve`, `worker` or `up` (default).
# Build: docker build -t cldpd .    Run: see docker-compose.yml

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm install --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/bundle.mjs ./scripts/
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
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
