# The gateway (with the ScyllaDB backend) and the local FNS receiver, for the compose
# cluster (config/docker-compose.cluster.yml). Build context: the repository root.
#
#   docker build -f config/cluster/gateway.Dockerfile -t ofd-gateway:dev .
#
# gateway.Dockerfile.dockerignore keeps target/ and .git out of the context (BuildKit,
# the default builder of `docker compose` v2).

# The toolchain the project is built and tested with on the build machines (1.95); the
# code needs 1.88 or newer.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p gateway --features scylla --bin gateway --bin fns-receiver \
    && install -D -m 0755 target/release/gateway target/release/fns-receiver -t /out/

FROM debian:bookworm-slim
# curl: the compose healthcheck asks /readyz
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/ofd-gateway --create-home ofd \
    && mkdir -p /var/lib/fns && chown ofd /var/lib/fns
COPY --from=build /out/gateway /out/fns-receiver /usr/local/bin/
USER ofd
WORKDIR /var/lib/ofd-gateway
# register TCP, TLS + QUIC, admin API, metrics
EXPOSE 7777/tcp 7778/tcp 7778/udp 8080/tcp 9477/tcp
ENTRYPOINT ["gateway"]
CMD ["--config", "/etc/ofd/gateway.toml"]
