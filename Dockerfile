# Build: docker build -t vouch .
#
# The master key seals signing keys, exception statements and emails, and keys the audit chain.
# Create it ONCE and keep it as a secret; every start must get the same key, or nothing sealed
# before can be opened again (never generate it in the run command):
#   openssl rand -base64 32 > vouch-master.key        # once; store it in your secret manager
#   docker volume create vouch-data
# Run:
#   docker run -p 8080:8080 -v vouch-data:/var/lib/vouch \
#     -e VOUCH_MASTER_KEY="$(cat vouch-master.key)" vouch
# (Orchestrators: pass it from a secret, e.g. a Kubernetes Secret or `docker secret`, as
# VOUCH_MASTER_KEY.)
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin vouch

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/vouch --create-home vouch
COPY --from=build /src/target/release/vouch /usr/local/bin/vouch
USER vouch
WORKDIR /var/lib/vouch
ENV VOUCH_LISTEN=0.0.0.0:8080 \
    VOUCH_DATABASE_URL=sqlite:///var/lib/vouch/vouch.db?mode=rwc
EXPOSE 8080
VOLUME ["/var/lib/vouch"]
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s CMD ["vouch", "health"]
ENTRYPOINT ["vouch"]
CMD ["serve"]
