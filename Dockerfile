# ocisync container image: build with the Rust toolchain, run on a slim Debian as a
# non-root user, the binary and a CA bundle only.
#   docker build -t ocisync:latest .
#
# Both bases are pinned to exact releases rather than floating tags (`rust:1-bookworm`,
# `debian:bookworm-slim`), so a rebuild gets the same compiler and the same runtime
# until someone changes these lines: rust 1.95.0, the toolchain the tests ran with, and
# Debian 12.11, the point release they ran on (glibc 2.36, which the binary links
# against). Pinning by digest (`debian:12.11-slim@sha256:...`) would also fix the
# image's bytes; add the digest from `docker buildx imagetools inspect debian:12.11-slim`
# where you build (it could not be looked up where this file was written).
FROM rust:1.95.0-bookworm AS builder
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p ocisync \
    && install -m 0755 target/release/ocisync /usr/local/bin/ocisync

FROM debian:12.11-slim
COPY --from=builder /usr/local/bin/ocisync /usr/local/bin/ocisync
# TLS trusts the Mozilla roots built into the binary and the OS store. The slim image
# has no CA bundle, so the builder's (Debian's ca-certificates) is the OS store here.
# A corporate CA: mount a bundle that includes it and set SSL_CERT_FILE to its path
# (or SSL_CERT_DIR to a directory of PEM files), or give one registry a ca_file.
COPY --from=builder /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# 65532 is the conventional "nonroot" uid; the Kubernetes manifests run as it too.
USER 65532:65532
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/ocisync"]
CMD ["--help"]
