# ocisync: every target installs what it needs on a fresh Debian machine.
CARGO ?= cargo
APT_PACKAGES := docker-registry skopeo time prometheus prometheus-pushgateway groff-base

.PHONY: all build demo bench bench-scale test lint fmt deps clean

all: build

# Debian's docker-registry is the CNCF distribution registry (2.8) the tests and demo run;
# skopeo reads and writes the OCI layouts of the interoperability tests (and is the
# benchmark's baseline); prometheus brings promtool, which checks the alert rules and
# the /metrics output; prometheus-pushgateway receives what `once --push-metrics` pushes;
# groff-base renders the man pages `ocisync man` prints.
# --no-install-recommends: the prometheus package alone, not its node exporter.
# kubectl is no Debian package: the deploy test renders the kustomize overlays with
# `kubectl kustomize` where kubectl is installed, and assembles them itself elsewhere.
deps:
	@if ! command -v docker-registry >/dev/null 2>&1 || ! command -v skopeo >/dev/null 2>&1 || [ ! -x /usr/bin/time ] \
		|| ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus-pushgateway >/dev/null 2>&1 \
		|| ! command -v groff >/dev/null 2>&1; then \
		echo "installing $(APT_PACKAGES)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null; \
	fi

build:
	$(CARGO) build --release

demo: deps
	$(CARGO) build --release --bin ocisync --bin ocisync-demo
	./target/release/ocisync-demo ./target/release/ocisync

# The benchmark of issue 7 (docs/benchmarks.md); not part of `make test`. BENCH_ARGS
# passes flags through, e.g. BENCH_ARGS="--runs 1 --concurrency 8,6".
bench: deps
	$(CARGO) build --release --bin ocisync --bin ocisync-bench
	./target/release/ocisync-bench ./target/release/ocisync $(BENCH_ARGS)

bench-scale: deps
	$(CARGO) build --release --bin ocisync --bin ocisync-bench
	./target/release/ocisync-bench ./target/release/ocisync --scale $(BENCH_ARGS)

test: deps
	$(CARGO) test --workspace --all-targets
	$(CARGO) test --workspace --doc

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
