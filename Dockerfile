# glimpse in a container: the server, the page and the embedded CPU engine; point it at GPU servers
# (vLLM, SGLang, Ollama) with GLIMPSE_ENGINE=upstream. See docs/deploy.md ("Docker").
#
#   docker build -t glimpse .
#   docker run -p 8080:8080 -e GLIMPSE_API_KEYS=me:secret -v glimpse-models:/var/cache/glimpse/models glimpse
#
# NODE_IMAGE: any Debian-based image with Node.js 20 or newer at /usr/local/bin and a `node` user
# (uid 1000), as the official node images have.
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
ENV ONNXRUNTIME_NODE_INSTALL=skip
# Dependencies first, so the layer is reused while only sources change.
COPY package.json package-lock.json .npmrc ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY bin/ bin/
COPY src/ src/
COPY web/ web/
COPY scripts/ scripts/
RUN npm rebuild --no-audit --no-fund \
 && npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 # onnxruntime-node ships its native library for every OS and CPU: keep this image's one. The
 # transformers.js build for Node carries the onnxruntime-web code it needs inside it, so that
 # package (140 MB of browser WebAssembly) is never loaded here.
 && os="$(node -p process.platform)" && cpu="$(node -p process.arch)" \
 && for d in node_modules/onnxruntime-node/bin/napi-v*/*; do [ "${d##*/}" = "$os" ] || rm -rf "$d"; done \
 && for d in node_modules/onnxruntime-node/bin/napi-v*/"$os"/*; do [ "${d##*/}" = "$cpu" ] || rm -rf "$d"; done \
 && rm -rf node_modules/onnxruntime-web \
 && find dist -name "*.map" -delete

FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    GLIMPSE_HOST=0.0.0.0 \
    GLIMPSE_PORT=8080 \
    GLIMPSE_LOG_FORMAT=json \
    GLIMPSE_CACHE_DIR=/var/cache/glimpse/models
WORKDIR /app
# Owned by root and read-only to the server; only the model cache is its to write.
COPY --from=build /src/package.json ./
COPY --from=build /src/bin/ bin/
COPY --from=build /src/dist/src/ dist/src/
COPY --from=build /src/web/dist/ web/dist/
COPY --from=build /src/node_modules/ node_modules/
RUN mkdir -p /var/cache/glimpse/models && chown node:node /var/cache/glimpse/models
VOLUME /var/cache/glimpse/models
USER node
EXPOSE 8080
# SIGTERM: /ready turns 503, requests in flight get GLIMPSE_GRACE_SHUTDOWN_SECONDS (25) to finish.
# `docker stop` waits 10 s by default: use `docker stop -t 35` (Compose: stop_grace_period: 35s).
STOPSIGNAL SIGTERM
# Alive = the process answers (/livez). Not /health: GPU servers that are down, or a model still
# downloading, are no reason for an orchestrator to restart glimpse. Traffic is /ready's job.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.GLIMPSE_PORT||8080)+'/livez').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "bin/glimpse.js"]
CMD ["serve"]
