# One image for every role: `vaquero server`, `vaquero agent` (see docker-compose.yml).
FROM node:20-bookworm-slim

ENV NODE_ENV=production
WORKDIR /app

# tsx is a runtime dependency (bin/vaquero.mjs runs the TypeScript sources), so --omit=dev keeps
# everything the commands need.
COPY package.json package-lock.json ./
# postinstall applies patches/ (the tftp package fixes) during npm ci.
COPY patches ./patches
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

COPY . .
# The build id's commit (.git is not copied): docker build --build-arg VAQUERO_COMMIT=$(git rev-parse --short=12 HEAD)
ARG VAQUERO_COMMIT=unknown
ENV VAQUERO_COMMIT=$VAQUERO_COMMIT

USER node
ENTRYPOINT ["node", "bin/vaquero.mjs"]
CMD ["server"]
