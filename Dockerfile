# Surety in a container: a release build in the Rust image, run as a non-root user on slim
# Debian, the SQLite ledger on a volume. README "Running in production" explains the settings.
#
#   docker build -t surety .
#   docker run -p 8080:8080 -v surety-ledger:/var/lib/surety \
#     -v $PWD/surety.toml:/etc/surety/surety.toml:ro -e SURETY_CONFIG=/etc/surety/surety.toml \
#     -e SURETY_ADMIN_TOKEN=… surety

# ---- build ----
FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin surety \
 && cp target/release/surety /surety

# ---- run ----
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 surety \
 && useradd --system --uid 10001 --gid surety --home-dir /var/lib/surety --shell /usr/sbin/nologin surety \
 && mkdir -p /var/lib/surety \
 && chown surety:surety /var/lib/surety \
 && chmod 0700 /var/lib/surety
COPY --from=build /surety /usr/local/bin/surety
# The ledger lives on the volume; the API listens on every interface of the container.
# Both can be overridden by the configuration file or by these variables.
ENV SURETY_STORAGE__URL=sqlite:///var/lib/surety/surety.db \
    SURETY_SERVER__LISTEN=0.0.0.0:8080
VOLUME ["/var/lib/surety"]
WORKDIR /var/lib/surety
USER 10001:10001
EXPOSE 8080
# Ready = the ledger can commit (GET /readyz). The slim image has no curl: bash's /dev/tcp
# asks, and only an "HTTP/1.x 200" status line counts as healthy.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /readyz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q '^HTTP/1\\.[01] 200'"]
ENTRYPOINT ["/usr/local/bin/surety"]
CMD ["serve"]
