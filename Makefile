# CapLiquify Operator. `make test` and `make demo` work on a fresh machine: they install
# what they need (apt packages, the venv, the Go-built control plane) themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
APT_PACKAGES := openssl ca-certificates prometheus prometheus-alertmanager
# The image (buildah, debootstrap) and the real nodes (containerd, runc, the CNI loopback plugin).
APT_PACKAGES += buildah debootstrap containerd runc containernetworking-plugins
KUBECTL := $(shell command -v kubectl)

.PHONY: all deps apt venv controlplane image node crds dashboards lint golden test test-unit test-integration demo bench bench-quality soak clean

all: test

apt:
	@echo "==> System packages: $(APT_PACKAGES)"
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@command -v kubectl >/dev/null || { echo "kubectl is required (the machine image provides it)"; exit 1; }

$(STAMP): pyproject.toml
	@echo "==> Python environment in $(VENV) (the package and its test tools; about a minute the first time)"
	@$(PYTHON) -m venv $(VENV)
	@$(PIP) install -q --disable-pip-version-check --upgrade pip
	@# PYTHONWARNINGS: setuptools' editable build warns about the source folder on every install
	@PYTHONWARNINGS=ignore $(PIP) install -q --disable-pip-version-check --no-warn-script-location -e ".[test]"
	@touch $(STAMP)

venv: $(STAMP)

controlplane:
	@echo "==> Local control plane (built from pinned Go modules once, about 12 min on 2 cores; cached after)"
	@bash hack/controlplane/build.sh

deps: apt venv controlplane

# The operator's image, no container daemon (hack/image/build.sh): dist/capliquify-operator-<version>.tar,
# a docker-archive for `ctr images import` or `kind load image-archive`. Needs root.
image: apt venv
	@echo "==> Image: buildah from a Debian base made here (first time: a few minutes; the base is cached)"
	@PY=$(PY) bash hack/image/build.sh

# The real nodes' kubelet (pinned k8s.io/kubernetes, like the control plane) and pause binary.
node: apt
	@bash hack/node/build.sh

crds: venv
	$(PY) -m controller crds crds --chart charts/capliquify-operator

# Grafana dashboards as code (controller/dashboards.py) → charts/capliquify-operator/dashboards/.
dashboards: venv
	$(PY) -m controller.dashboards charts/capliquify-operator/dashboards

# Import contracts, ruff (pycodestyle, pyflakes, bugbear) and mypy; unit tests run them too.
lint: venv
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check controller bench demo localcluster tests
	$(VENV)/bin/mypy

test-unit: venv
	$(PY) -m pytest -m "not integration" -q

# Rewrites every golden file the unit tests check (status patches, Events, receivers' bodies,
# the chart's renders) from the code as it is: review the diff, then commit it.
golden: venv
	CAPLIQUIFY_UPDATE_GOLDEN=1 $(PY) -m pytest -m "not integration" -q -p no:cacheprovider \
		$$(grep -l CAPLIQUIFY_UPDATE_GOLDEN tests/unit/*.py)

test-integration: deps
	$(PY) -m pytest -m integration -q

# Every test: unit and integration (the latter starts the local control plane itself).
test: deps
	@echo "==> Tests: unit, then integration against the local control plane (about an hour on 2 cores: soaks, a real node and the image included)"
	$(PY) -m pytest -q

# As root the operator runs as two pods on real nodes (the image and the kubelet first: cached
# after the first time); otherwise as a host process, and the demo says why.
DEMO_NEEDS := $(if $(filter 0,$(shell id -u)),image node,)
demo: deps $(DEMO_NEEDS)
	@echo "==> Demo: a local control plane, Prometheus and the operator as pods on real nodes; scaling, alerting, Railway (about 10 min)"
	$(if $(DEMO_NEEDS),CAPLIQUIFY_IMAGE_BUILT=1 )$(PY) -m demo

bench: deps
	$(PY) -m bench

# Overlapping faults on a seeded schedule, invariants checked from outside (bench/soak.py,
# docs/reliability.md): `make soak DURATION=3600 SEED=7`; a failing run prints its replay line.
DURATION ?= 3600
SEED ?=
NAMESPACES ?= 5
PER_NAMESPACE ?= 20
soak: deps
	$(PY) -m bench.soak --duration $(DURATION) --namespaces $(NAMESPACES) --per-namespace $(PER_NAMESPACE) \
	  $(if $(SEED),--seed $(SEED),)

# Scaling quality against the HPA v2 port on the closed-loop simulator (simulated time; seconds).
bench-quality: venv
	$(PY) -m bench.quality --plot-dir docs/img

clean:
	rm -rf $(VENV) .pytest_cache
