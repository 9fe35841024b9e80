# The pipeline-sidecars operator image:
#   docker build -t ghcr.io/pipeline-sidecars/operator:$(node -p 'require("./package.json").version') .
# The tests build this very file with no registry (scripts/operator-image.sh): the two base images
# are build args, given there as locally built equivalents. No `# syntax=` line: BuildKit would pull
# that frontend image.
# Platform engineers who add sidecar kinds need no fork: they build FROM this image, copy their
# compiled kinds module under /app (this package's directory, where the module's
# require('pipeline-sidecars') finds the running operator) and name it in PIPELINE_SIDECARS_KINDS,
# which `run` (and `render`) load at start (docs/custom-kind.md):
#   FROM ghcr.io/pipeline-sidecars/operator:0.1.0
#   COPY redis.js /app/kinds/redis.js
#   ENV PIPELINE_SIDECARS_KINDS=/app/kinds/redis.js
# The install bundle takes that image as its one parameter (`pipeline-sidecars synth --image ...`).

ARG NODE_IMAGE=node:20-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs20-debian12:nonroot

# --- build: compile TypeScript (tsc, outDir lib/), then keep production dependencies only ---
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
# Type declarations and source maps of the dependencies are never loaded at run time (a third of node_modules).
RUN npx projen compile \
 && npm prune --omit=dev --no-audit --no-fund \
 && find node_modules -type f \( -name '*.d.ts' -o -name '*.d.cts' -o -name '*.d.mts' -o -name '*.map' \) -exec rm -f {} +

# --- runtime: distroless Node.js 20, non-root (uid 65532, as the Deployment's runAsUser), no shell ---
FROM ${RUNTIME_IMAGE}
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/lib ./lib
COPY --from=build /src/bin ./bin
USER 65532:65532
# bin/pipeline-sidecars runs lib/src/cli.js (there is no src/ here, so never ts-node). distroless has no /usr/bin/env, so call node directly.
# The Deployment's args start with `run`; CMD makes `docker run IMAGE` start the operator too.
ENTRYPOINT ["/nodejs/bin/node", "/app/bin/pipeline-sidecars"]
CMD ["run"]
