# vk-parser: multi-stage build. The builder compiles the service and the VK simulator (used by
# docker-compose.yml as a stand-in for VK); the runtime image is Debian slim, non-root, with CA
# certificates (reqwest/rustls verifies against the system store) and the ops health check.
# Issue 9 adds dependency caching (cargo-chef); untested here: this machine has no Docker engine.

FROM rust:1.95-slim-bookworm AS builder
WORKDIR /src
COPY . .
RUN cargo build --release --locked --workspace --bins

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /app vkparser \
 && mkdir /data && chown vkparser /data
WORKDIR /app
COPY --from=builder /src/target/release/vk-parser /usr/local/bin/vk-parser
COPY --from=builder /src/target/release/vk-sim /usr/local/bin/vk-sim
USER vkparser
ENV VKP_SERVICE__ENVIRONMENT=production \
    VKP_OPS__LISTEN=0.0.0.0:9090
EXPOSE 9090
HEALTHCHECK --interval=15s --timeout=3s --retries=3 CMD curl -fsS http://127.0.0.1:9090/healthz || exit 1
ENTRYPOINT ["vk-parser"]
CMD ["run"]
