# Gatehouse in a small runtime image: built with the project's toolchain, run as an
# unprivileged user on Debian's slim base (the C libraries the binary links: glibc only).
#   docker build -t gatehouse .
#   docker run -v $PWD/deploy/gatehouse.toml:/etc/gatehouse/gatehouse.toml gatehouse
# compose.yaml starts two of these on one PostgreSQL store.

FROM rust:1-bookworm AS build
# libpg_query (PostgreSQL's parser, for the SQL classifier) is generated with bindgen.
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang libclang-dev protobuf-compiler \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p gatehouse \
 && strip target/release/gatehouse

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/gatehouse --create-home gatehouse \
 && mkdir -p /var/lib/gatehouse/state /var/lib/gatehouse/recordings \
 && chown -R gatehouse:gatehouse /var/lib/gatehouse
COPY --from=build /src/target/release/gatehouse /usr/local/bin/gatehouse
USER gatehouse
WORKDIR /var/lib/gatehouse
# The state directory and the recordings: volumes (several instances may share them; each
# keeps a journal of its own there). New named volumes take this ownership.
VOLUME ["/var/lib/gatehouse/state", "/var/lib/gatehouse/recordings"]
# PostgreSQL, MySQL, SSH and the admin API (HTTPS: /metrics, /healthz, /readyz).
EXPOSE 5432 3306 2222 8443
ENTRYPOINT ["/usr/local/bin/gatehouse"]
CMD ["--config", "/etc/gatehouse/gatehouse.toml", "serve"]
