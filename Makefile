# ocisync: every target installs what it needs on a fresh Debian machine.
CARGO ?= cargo
APT_PACKAGES := docker-registry skopeo time prometheus prometheus-pushgateway groff-base

.PHONY: all build demo bench bench-wan bench-transfers bench-scale bench-lag test lint deny audit fuzz fmt deps clean

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

# The WAN profile of issue 19: the same benchmark with the source at a distance behind a
# slow link (every byte half the round trip later each way, one link of the rate shared by
# every connection),
# at 40 ms / 50 MiB/s, then at 100 ms / 20 MiB/s. BENCH_ARGS comes last, so it can
# override, e.g. BENCH_ARGS="--runs 1".
bench-wan: deps
	$(CARGO) build --release --bin ocisync --bin ocisync-bench
	./target/release/ocisync-bench ./target/release/ocisync --source-rtt-ms 40 --source-link-mib 50 $(BENCH_ARGS)
	./target/release/ocisync-bench ./target/release/ocisync --source-rtt-ms 100 --source-link-mib 20 $(BENCH_ARGS)

# Issue 18's bandwidth cap and issue 19's resumed transfers: one 256 MiB layer under a
# 50 MiB/s cap, through downloads cut every 50 MiB, into a mirror that resets a chunk.
bench-transfers: deps
	$(CARGO) build --release --bin ocisync --bin ocisync-bench
	./target/release/ocisync-bench ./target/release/ocisync --transfers $(BENCH_ARGS)

bench-scale: deps
	$(CARGO) build --release --bin ocisync --bin ocisync-bench
	./target/release/ocisync-bench ./target/release/ocisync --scale $(BENCH_ARGS)

# Mirror lag with registry notifications and with the schedule alone (docs/events.md).
bench-lag: deps
	$(CARGO) build --release --bin ocisync --bin ocisync-bench
	./target/release/ocisync-bench ./target/release/ocisync --lag $(BENCH_ARGS)

test: deps
	$(CARGO) test --workspace --all-targets
	$(CARGO) test --workspace --doc

# clippy also holds the code to the declared MSRV (`rust-version`): its
# incompatible_msrv lint rejects standard library items newer than it.
# import-cycles.py fails on modules of one crate that import each other (the engine's
# seams; layout and bench are held to it too, the other crates still have cycles).
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	python3 scripts/import-cycles.py crates/engine/src crates/layout/src crates/bench/src

# Supply chain (deny.toml): licenses, banned crates and sources; no network beyond
# crates.io. cargo-deny is built from crates.io when missing, which took 9 min 21 s on
# the shared 2-core machine (4 min 14 s of CPU), so it is a target of its own, not a
# step of `make lint`.
CARGO_DENY_VERSION := 0.20.2
deny:
	@$(CARGO) deny --version >/dev/null 2>&1 || $(CARGO) install --locked cargo-deny --version $(CARGO_DENY_VERSION)
	$(CARGO) deny check --hide-inclusion-graph licenses bans sources

# RustSec advisories: needs the advisory database, which cargo-deny clones from its git
# repository; where that is out of reach (this project's machines), copy the database
# under ~/.cargo/advisory-dbs and run `make audit DENY_FLAGS=--offline`.
audit:
	@$(CARGO) deny --version >/dev/null 2>&1 || $(CARGO) install --locked cargo-deny --version $(CARGO_DENY_VERSION)
	$(CARGO) deny $(DENY_FLAGS) check --hide-inclusion-graph advisories

# The fuzz targets of fuzz/ (docs/security.md), each for FUZZ_SECONDS, one after
# another on one core; not part of `make test`. cargo-fuzz is built from crates.io when
# missing. No nightly needed: RUSTC_BOOTSTRAP=1 lets the stable compiler take the -Z
# flags cargo-fuzz passes (sanitizer, coverage). A crash stops here, its input saved
# under fuzz/artifacts/TARGET/. FUZZ_TARGETS picks some, e.g. FUZZ_TARGETS="config link".
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= manifest names www_authenticate link rate_headers config docker_config image_ref
CARGO_FUZZ_VERSION := 0.13.2
fuzz:
	@$(CARGO) fuzz --version >/dev/null 2>&1 || $(CARGO) install --locked cargo-fuzz --version $(CARGO_FUZZ_VERSION)
	cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz build -O
	@for target in $(FUZZ_TARGETS); do \
		echo "fuzzing $$target for $(FUZZ_SECONDS) s"; \
		mkdir -p fuzz/corpus/$$target; \
		(cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run -O $$target corpus/$$target seeds/$$target -- \
			-max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=1024 -max_len=65536 \
			-print_final_stats=1) || exit 1; \
	done

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
