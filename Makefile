# pycrio: `make run` starts the daemon, `make test` runs the whole suite. Both set up a fresh machine first
# (`make run` with the daemon's packages only, `make test` with the test-only ones too).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
GEN := src/adapters/cri/generated
PROTO := proto/runtime/v1/api.proto
NRI_GEN := src/adapters/nri/generated
NRI_PROTO := proto/nri/nri.proto proto/nri/ttrpc.proto
# The namespace helper (pins a pod's namespaces, starts its infra init); static, so it runs in any guest.
NS_HELPER := src/adapters/namespaces/pycrio-ns
ARGS ?=

.PHONY: bootstrap run test vm-test vm-shell lint proto helpers bench clean docs

# The full set-up (daemon, tests, lint, bench); `make run` installs only what the daemon needs.
bootstrap:
	@scripts/bootstrap.sh --test

run:
	@scripts/bootstrap.sh
	$(VENV)/bin/pycrio $(ARGS)

test: bootstrap
	@scripts/start-dockerd.sh
	DOCKER_HOST=unix:///var/run/docker.sock TESTCONTAINERS_RYUK_DISABLED=true \
		$(PY) -m pytest -ra $(ARGS)

# The systemd + cgroup v2 suite in a qemu guest (scripts/vm/run.sh; docs/systemd-cgroup-v2.md).
vm-test: bootstrap
	@scripts/vm/run.sh

vm-shell: bootstrap
	@VM_SHELL=1 scripts/vm/run.sh

lint: bootstrap
	$(VENV)/bin/ruff check src tests bench examples
	$(VENV)/bin/mypy

proto: $(GEN)/api_pb2.py $(NRI_GEN)/nri_pb2.py

$(GEN)/api_pb2.py: $(PROTO)
	mkdir -p $(GEN)
	$(PY) -m grpc_tools.protoc -Iadapters/cri/generated=proto/runtime/v1 \
		--python_out=src --pyi_out=src --grpc_python_out=src $(PROTO)
	touch $(GEN)/__init__.py

$(NRI_GEN)/nri_pb2.py: $(NRI_PROTO)
	mkdir -p $(NRI_GEN)
	$(PY) -m grpc_tools.protoc -Iadapters/nri/generated=proto/nri --python_out=src --pyi_out=src $(NRI_PROTO)
	touch $(NRI_GEN)/__init__.py

helpers: $(NS_HELPER)

$(NS_HELPER): $(NS_HELPER).c
	$(CC) -O2 -static -s -Wall -Wextra -Werror -o $@ $<

docs:
	PYTHONPATH=src $(PY) -m app.config_docs docs/configuration.md

bench: bootstrap
	$(PY) -m bench $(ARGS)

clean:
	rm -rf $(VENV) $(GEN) $(NS_HELPER) .mypy_cache .pytest_cache .ruff_cache
