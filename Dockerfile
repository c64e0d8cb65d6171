# ocisync container image: build with the Rust toolchain, run on a slim Debian as a
# non-root user. TLS uses built-in Mozilla roots (webpki-roots), so the runtime image
# needs no CA bundle; mount a private CA and point `ca_file` at it if you have one.
#   docker build -t ocisync:latest .
FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p ocisync \
    && install -m 0755 target/release/ocisync /usr/local/bin/ocisync

FROM debian:bookworm-slim
COPY --from=builder /usr/local/bin/ocisync /usr/local/bin/ocisync
# 65532 is the conventional "nonroot" uid; the Kubernetes manifests run as it too.
USER 65532:65532
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/ocisync"]
CMD ["--help"]
