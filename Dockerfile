# Build: docker build -t vouch .
# Run:   docker run -p 8080:8080 -e VOUCH_MASTER_KEY=$(openssl rand -base64 32) vouch
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
