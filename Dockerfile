# syntax=docker/dockerfile:1
# The callahead image: `callahead serve` and the other commands, as a non-root user.
#
#   docker build -t callahead:0.1.0 .
#   docker run --rm callahead:0.1.0 rules check /etc/callahead/rules
#
# The entrypoint is the binary; the default command serves with /etc/callahead/callahead.toml
# (written below: HTTP on 0.0.0.0:9898, the default rule pack, SQLite under /var/lib/callahead).
# The Helm chart (helm/callahead) passes its own `serve --config …` arguments.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
# librdkafka is built from source by rdkafka-sys (configure + make, C and C++); SQLite is bundled.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential pkg-config zlib1g-dev libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Cache mounts keep the crate downloads and the build directory between builds (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin callahead \
    && install -D -m 0755 target/release/callahead /out/callahead
# The image ships its CycloneDX SBOM (the same tool and version as scripts/supply-chain.sh).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    cargo install --locked cargo-cyclonedx --version 0.5.9 --root /tools \
    && /tools/bin/cargo-cyclonedx cyclonedx --format json --override-filename callahead.cdx \
    && install -D -m 0644 callahead.cdx.json /out/sbom/callahead.cdx.json

FROM debian:${DEBIAN_RELEASE}-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates tzdata libssl3 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 callahead \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/callahead --no-create-home \
       --shell /usr/sbin/nologin callahead \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/callahead
COPY --from=build /out/callahead /usr/local/bin/callahead
COPY --from=build /out/sbom/callahead.cdx.json /usr/share/doc/callahead/sbom.cdx.json
COPY rules/ /etc/callahead/rules/
COPY config/callahead.example.toml /etc/callahead/callahead.example.toml
RUN printf '%s\n' \
    '# Container defaults; every key can be overridden with CALLAHEAD_<SECTION>_<KEY>.' \
    '[kafka]' \
    'brokers = "kafka:9092"' \
    '[store]' \
    'url = "sqlite:///var/lib/callahead/callahead.db"' \
    '[rules]' \
    'dir = "/etc/callahead/rules"' \
    '[http]' \
    'listen = "0.0.0.0:9898"' \
    > /etc/callahead/callahead.toml \
    && /usr/local/bin/callahead rules check /etc/callahead/rules
USER 10001:10001
WORKDIR /var/lib/callahead
EXPOSE 9898
ENTRYPOINT ["/usr/local/bin/callahead"]
CMD ["serve", "--config", "/etc/callahead/callahead.toml", "--json-logs"]
