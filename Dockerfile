FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the package's own `prepare` (tsc) needs tsconfig.json and src/, copied below, and
# no dependency needs an install script (better-sqlite3 ships prebuilt binaries, so no compiler
# either). Its `postinstall` only fetches a newer Node.js for older ones, which this image is not.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --ignore-scripts

FROM node:22-bookworm-slim
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY migrations ./migrations
COPY ui ./ui
ENTRYPOINT ["node", "bin/run.js"]
