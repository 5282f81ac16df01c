# mcp-oauth-gateway as a container image.
#
#   docker build -t mcp-oauth-gateway .
#   docker build -t mcp-oauth-gateway:chromium --build-arg WITH_CHROMIUM=true .   # playwright service
#   docker run --init -p 8080:8080 -v mcp-gateway-data:/data \
#     -e MCP_GATEWAY_PUBLIC_URL=http://localhost:8080 mcp-oauth-gateway
#
# The build stage packs the package the way `npm publish` would (`npm pack`: `prepare` compiles
# the TypeScript, the `files` list decides what goes in) and installs that tarball globally into
# /opt/mcp-gateway, exactly as `npm install -g` does for a user: production dependencies only.
# The runtime stage gets that prefix and nothing else. test/e2e/packaging.test.ts runs the
# same pack-and-install on the host; test/e2e/compose-on-host.test.ts runs this runtime stage's
# ENV, WORKDIR, USER, HEALTHCHECK and CMD there.

ARG NODE_VERSION=20

FROM node:${NODE_VERSION}-bookworm-slim AS build
# better-sqlite3 downloads a prebuilt binary; where it cannot, it compiles (python3, make, g++).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# Dev dependencies are for the compiler only; no install script is needed for that.
RUN npm install --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json README.md ./
COPY bin ./bin
COPY src ./src
# `prepare` also bundles the admin commands (npm run build).
COPY scripts/bundle-admin.mjs ./scripts/
COPY deploy ./deploy
RUN npm pack --pack-destination /tmp \
 && npm install -g --allow-scripts=better-sqlite3 --prefix /opt/mcp-gateway --omit=dev --no-audit --no-fund \
      /tmp/mcp-oauth-gateway-*.tgz

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
# Debian's Chromium, which the playwright service drives (MCP_PLAYWRIGHT_ENABLED=true).
ARG WITH_CHROMIUM=false
RUN if [ "$WITH_CHROMIUM" = "true" ]; then \
      apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium fonts-liberation \
      && rm -rf /var/lib/apt/lists/*; \
    fi
COPY --from=build /opt/mcp-gateway /opt/mcp-gateway
# Inside a container the gateway must listen on every interface (its own default is 127.0.0.1);
# its data (SQLite store, the filesystem service's workspace, the memory file) goes to /data.
ENV PATH=/opt/mcp-gateway/bin:$PATH \
    NODE_ENV=production \
    MCP_GATEWAY_HOST=0.0.0.0 \
    MCP_GATEWAY_PORT=8080 \
    MCP_GATEWAY_DATA_DIR=/data
# `node` (uid 1000) is the unprivileged user of the official Node.js images.
RUN mkdir -p /data && chown node:node /data
VOLUME /data
# A gateway.yaml in the data volume is read if present (or set MCP_GATEWAY_CONFIG).
WORKDIR /data
USER node
EXPOSE 8080
# No curl in this image: Node's own fetch asks /healthz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.MCP_GATEWAY_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["mcp-gateway", "serve"]
