# vk-parser images, in stages:
#
#   chef     the Rust toolchain plus cargo-chef
#   planner  reduces the workspace to a recipe: manifests, Cargo.lock, target names
#   builder  compiles the dependencies from the recipe alone (a layer that is reused until
#            Cargo.toml or Cargo.lock change), then the workspace's own code. Measured on 2
#            shared cores: cargo-chef 4 min, dependencies 33 min, the workspace 1 min; after a
#            change to src/ the cooked layer was reused and only the 3 workspace crates
#            compiled (1m43s)
#   runtime  Debian slim with CA certificates and busybox (for the health checks), non-root
#   vk-sim   the VK simulator (docker-compose.yml's stand-in for VK and the token manager)
#   vk-parser the service; the default target, so a plain `docker build .` gives it
#
# Configuration comes from the environment only (README.md, "Settings"); nothing is baked in
# except the ops listener, which must not be loopback in a container.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS chef
# Pinned: a recipe written by one cargo-chef version is read by the same version.
RUN cargo install cargo-chef --locked --version 0.1.78
# std's debug info is most of an unstripped release binary; symbol names stay, so a panic's
# backtrace (RUST_BACKTRACE=1) still names functions. Set here so cook and build agree: a
# different profile would rebuild every dependency.
ENV CARGO_PROFILE_RELEASE_STRIP=debuginfo
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# Same flags as the build below (profile, --workspace --bins, --locked), so the features
# resolved here are the ones the real build needs and nothing is compiled twice.
RUN cargo chef cook --release --locked --workspace --bins --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --workspace --bins

FROM debian:bookworm-slim AS runtime
# ca-certificates: reqwest (rustls) and the S3 client verify TLS against the system store.
# busybox: its `wget` answers the HEALTHCHECKs (~1 MB; curl would bring ~10 MB of libraries).
# Debian's build of it has no `-T` (and crashes on it): HEALTHCHECK --timeout bounds the wait.
# The binaries need nothing else: rustls instead of OpenSSL, zstd/lz4/aws-lc compiled in.
# Versions are not pinned (DL3008): bookworm's archive drops superseded versions, so a pin
# would break the build at the next security update; the base tag fixes the release.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates busybox \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 vkparser \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin vkparser \
 && mkdir -p /app/data \
 && chown -R 10001:10001 /app
WORKDIR /app
# Numeric, so an orchestrator enforcing "run as non-root" can check it without /etc/passwd.
USER 10001:10001

FROM runtime AS vk-sim
COPY --from=builder /src/target/release/vk-sim /usr/local/bin/vk-sim
# The simulator stops on Ctrl-C only (SIGINT); SIGTERM would leave it to be killed.
STOPSIGNAL SIGINT
EXPOSE 8080 8081
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=3 \
  CMD ["busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/sim/truth/named"]
ENTRYPOINT ["vk-sim"]
CMD ["--api-addr", "0.0.0.0:8080", "--proxy-addr", "0.0.0.0:8081"]

FROM runtime AS vk-parser
COPY --from=builder /src/target/release/vk-parser /usr/local/bin/vk-parser
# JSON logs; the ops port on every interface (the compiled-in default, repeated here because
# the health check below depends on it: change both together).
ENV VKP_SERVICE__ENVIRONMENT=production \
    VKP_OPS__LISTEN=0.0.0.0:9090
EXPOSE 9090
# SIGTERM (Docker's default stop signal) starts the drain: no new entries, running jobs get
# stream.shutdown_grace (30s) to finish. Give the container more than that before SIGKILL
# (`docker stop -t 45`, compose `stop_grace_period: 45s`).
# /healthz checks no dependency: a Redis outage shows on /readyz, it does not restart replicas.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9090/healthz"]
ENTRYPOINT ["vk-parser"]
CMD ["run"]
