# Portcullis for PostgreSQL: the release binary with the `postgres` store and
# the CLI only (no SQLite, no Diesel, no libsqlite3), in a slim Debian image,
# run as a non-root user. `compose.yaml` runs it next to PostgreSQL 15.
#
#   docker build -t portcullis .
#
# Written without Docker at hand: it has not been built here (see README,
# "Production").

FROM rust:1.95-slim-bookworm AS builder
# josekit and lettre (native-tls) link OpenSSL.
RUN apt-get update \
    && apt-get install -y --no-install-recommends pkg-config libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p portcullis --no-default-features --features postgres,cli,oauth \
    && install -m 0755 target/release/portcullis /usr/local/bin/portcullis

FROM debian:bookworm-slim
# OpenSSL at run time, and the system's certificate authorities (the SMTP
# server's certificate; PostgreSQL with sslmode=verify-full).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /srv/portcullis --create-home \
        --shell /usr/sbin/nologin portcullis
COPY --from=builder /usr/local/bin/portcullis /usr/local/bin/portcullis
USER portcullis:portcullis
WORKDIR /srv/portcullis
# Listen on every interface of the container; everything else comes from
# the environment (see README, "Configuration").
ENV HOST=0.0.0.0 \
    PORT=8000 \
    PORTCULLIS_ENV=production
EXPOSE 8000
ENTRYPOINT ["portcullis"]
CMD ["serve"]
