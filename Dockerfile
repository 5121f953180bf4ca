# syntax=docker/dockerfile:1
#
# kstep's runner image: the static kstep binary on Alpine, for GitLab CI jobs.
#
#   docker build -t registry.example.com/tools/kstep:0.1.0 .
#   docker run --rm registry.example.com/tools/kstep:0.1.0 version          # runs kstep
#   docker run --rm registry.example.com/tools/kstep:0.1.0 sh -c 'kstep version'   # runs sh
#
# The entrypoint is kstep, and with KSTEP_ENTRYPOINT=1 a first argument that is a shell (sh,
# bash, ash, dash, zsh) or an absolute path is executed as-is: GitLab's docker executor starts
# job containers with a shell command, so jobs work without `entrypoint: [""]`.
#
# Why Alpine + musl: the binary is static (no libc to match), so the final image is Alpine's
# ~8 MB plus kstep, and the same file can be copied out and run on any x86_64/aarch64 Linux
# (shell runners, other job images). docs/ci.md has the sizes and the trade-offs.

ARG RUST_VERSION=1.95
ARG ALPINE_VERSION=3.22

FROM rust:${RUST_VERSION} AS build
# musl-gcc compiles the C parts (ring) for the musl target; wasm32-wasip2 is for the built-in
# steps that host/build.rs compiles and embeds.
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
RUN rustup target add wasm32-wasip2 "$(uname -m)-unknown-linux-musl"
WORKDIR /src
COPY . .
# The cache mounts keep the registry and target dir between builds (BuildKit); the binary is
# copied out of the mount because mounts are not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    target="$(uname -m)-unknown-linux-musl" \
 && cargo build --release --locked -p kstep --target "$target" \
 && install -D -m 0755 "target/$target/release/kstep" /out/kstep

FROM alpine:${ALPINE_VERSION}
ARG KSTEP_UID=10001
COPY --from=build /out/kstep /usr/local/bin/kstep
# The built-in steps are precompiled into the binary and never touch a cache. The compile cache
# is for custom steps only: empty here and owned by root, so that an image built FROM this one
# can bake its steps with `RUN kstep warm steps/*.wasm` (as root: every job reads the entries,
# none can rewrite them); docs/ci.md explains.
ENV KSTEP_CACHE_DIR=/opt/kstep/cache \
    KSTEP_ENTRYPOINT=1
RUN install -d -m 0755 /opt/kstep/cache \
 && kstep version \
 && kstep sh -c 'test "$(id -u)" = 0' \
 && adduser -D -u "${KSTEP_UID}" -h /home/kstep kstep
USER ${KSTEP_UID}
WORKDIR /home/kstep
ENV HOME=/home/kstep
ENTRYPOINT ["kstep"]
CMD ["--help"]

LABEL org.opencontainers.image.title="kstep" \
      org.opencontainers.image.description="Deploy from GitLab CI to Kubernetes with sandboxed WebAssembly steps" \
      org.opencontainers.image.source="https://gitlab.com/kstep/kstep" \
      org.opencontainers.image.licenses="Apache-2.0"
