# Bulwark's container image: a multi-stage build into a small runtime image
# that runs as a non-root user and reports health on /readyz.
#
#   docker build -t bulwark .
#   docker run -p 8080:8080 -v "$PWD/bulwark.yaml:/etc/bulwark/bulwark.yaml:ro" \
#     -e OPENAI_API_KEY -e ANTHROPIC_API_KEY bulwark
#
# The container listens on 0.0.0.0:8080, beyond loopback, so the config
# must have `keys:` (client keys); without them `bulwark serve` refuses to
# start unless given --insecure-open. deploy/bulwark.yaml is a starting
# config; `bulwark check` inside the image validates yours.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# The same command CI runs (scripts/check-dockerfile.sh reads it from here).
RUN cargo build --release --locked -p bulwark-cli --bin bulwark \
    && install -D -m 0755 target/release/bulwark /out/usr/local/bin/bulwark \
    && install -d -m 0750 /out/var/lib/bulwark \
    && install -D -m 0644 deploy/bulwark.yaml /out/etc/bulwark/bulwark.yaml

# glibc and libgcc, CA certificates, no shell: the binary needs nothing else
# (TLS is rustls; SQLite is compiled in).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/usr/local/bin/bulwark /usr/local/bin/bulwark
COPY --from=build /out/etc/bulwark /etc/bulwark
COPY --from=build --chown=65532:65532 /out/var/lib/bulwark /var/lib/bulwark
USER 65532:65532
WORKDIR /var/lib/bulwark
ENV BULWARK_CONFIG=/etc/bulwark/bulwark.yaml \
    BULWARK_LOG_FORMAT=json
EXPOSE 8080
# In-flight requests get shutdown_grace (30 s) after SIGTERM: `docker stop`
# needs a longer timeout than its default 10 s (`docker stop -t 40`).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=4s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/bulwark", "probe", "http://127.0.0.1:8080/readyz"]
ENTRYPOINT ["/usr/local/bin/bulwark"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
