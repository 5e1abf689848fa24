# FSO: one image with every bin (fso-broker, fso-agent, fso-audit,
# fso-controller, fso-console, fso-alert); docker-compose.yml picks the command per service.
#   docker build -t fso .
#   docker run --rm -p 127.0.0.1:1883:1883 fso
FROM node:20-bookworm-slim

# corepack's signature check fails behind some proxies; npm's global install works.
RUN npm install -g pnpm@10
# better-sqlite3 (the audit trail's index) builds from source where no prebuilt binary downloads,
# and so does the agent's who-data addon (packages/agent/native).
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
ENV TURBO_TELEMETRY_DISABLED=1

WORKDIR /app

# Manifests first, so a source change does not redo the install layer.
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml ./
COPY packages/common/package.json packages/common/
COPY packages/broker/package.json packages/broker/
COPY packages/agent/package.json packages/agent/
# The agent's install script builds its who-data addon (fanotify) from these, offline, with g++ and Node's headers.
COPY packages/agent/binding.gyp packages/agent/
COPY packages/agent/scripts packages/agent/scripts
COPY packages/agent/native packages/agent/native
COPY packages/audit-recorder/package.json packages/audit-recorder/
COPY packages/audit-trail/package.json packages/audit-trail/
COPY packages/console/package.json packages/console/
COPY packages/alerts/package.json packages/alerts/
COPY packages/controller/package.json packages/controller/
RUN pnpm install --frozen-lockfile

COPY . .
# The second install only links the bins: pnpm skips a bin whose dist/cli.js
# does not exist yet, and nothing is built before `pnpm build`.
RUN pnpm build && pnpm install --frozen-lockfile --offline

ENV PATH=/app/node_modules/.bin:$PATH
# Docker copies these directories' ownership into fresh named volumes, so the
# daemons can run as the unprivileged `node` user.
RUN mkdir -p /data /audit /state /watched /index && chown node:node /data /audit /state /watched /index
USER node

EXPOSE 1883 8883 8080
# Without logins on a non-loopback address the broker refuses to start unless
# --insecure is given: run it with --auth FILE (or --jwt-*) outside a private network.
CMD ["fso-broker", "--host", "0.0.0.0", "--insecure", "--data-dir", "/data"]
