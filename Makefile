# schedulerd: `make demo` replays the GPU trace end to end; `make test` runs every test.
# Tools built from source (the Kubernetes control plane and KWOK, versitygw, Prometheus,
# the Temporal CLI, staticcheck) are cached in $(SCHEDULERD_CACHE), outside the clone,
# keyed by version.

SHELL := /bin/bash
export SCHEDULERD_CACHE ?= $(HOME)/.cache/schedulerd
GO ?= go
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(SCHEDULERD_CACHE)/tools/staticcheck-$(STATICCHECK_VERSION)/staticcheck
TEST_FLAGS ?= -count=1 -timeout 30m

.PHONY: setup build test reliability fuzz bench lint migrate demo kube-tools s3-tools prom-tools temporal-tools clean

setup:
	@scripts/setup.sh

build:
	$(GO) build -o bin/schedulerd ./cmd/schedulerd

kube-tools:
	@scripts/kube-tools.sh >/dev/null

s3-tools:
	@scripts/s3-tools.sh >/dev/null

prom-tools:
	@scripts/prom-tools.sh >/dev/null

temporal-tools:
	@scripts/temporal-tools.sh >/dev/null

test: setup kube-tools s3-tools prom-tools temporal-tools
	$(GO) test $(TEST_FLAGS) ./...
	$(GO) test -count=1 -run '^$$' -bench . -benchtime=1x ./store ./scheduler ./dispatcher ./accounting
	@scripts/fuzz.sh
	$(MAKE) reliability

# The reliability suite kills, pauses and cuts off the daemon and its servers; about 10
# minutes on 2 cores. Its tests build only with the reliability tag.
reliability: setup kube-tools s3-tools
	$(GO) test -tags reliability $(TEST_FLAGS) ./reliability/

bench: setup kube-tools
	@scripts/bench.sh

fuzz:
	@scripts/fuzz.sh

$(STATICCHECK):
	GOBIN=$(dir $@) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: $(STATICCHECK)
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "not gofmt-formatted: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

migrate: build
	bin/schedulerd migrate up

demo: setup kube-tools build
	@GO="$(GO)" scripts/demo.sh

clean:
	rm -rf bin out
