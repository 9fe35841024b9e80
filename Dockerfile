# syntax=docker/dockerfile:1
# The pipeline-sidecars operator image. Not built in this repository's CI (no Docker engine there):
#   docker build -t ghcr.io/pipeline-sidecars/operator:$(node -p 'require("./package.json").version') .
# Platform engineers who add sidecar kinds build their own image the same way from their fork
# (register kinds in src/, then build); the install bundle takes the image as its one parameter
# (`pipeline-sidecars synth --image ...`).

# --- build: compile TypeScript (tsc, outDir lib/), then keep production dependencies only ---
FROM node:20-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npx projen compile \
 && npm prune --omit=dev --no-audit --no-fund

# --- runtime: distroless Node.js 20, non-root (uid 65532, as the Deployment's runAsUser), no shell ---
FROM gcr.io/distroless/nodejs20-debian12:nonroot
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/lib ./lib
COPY --from=build /src/bin ./bin
USER 65532:65532
# bin/pipeline-sidecars runs lib/src/cli.js. distroless has no /usr/bin/env, so call node directly.
# The Deployment's args start with `run`; CMD makes `docker run IMAGE` start the operator too.
ENTRYPOINT ["/nodejs/bin/node", "/app/bin/pipeline-sidecars"]
CMD ["run"]
