# The README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
GO ?= go
FUZZTIME ?= 5s
FUZZ_TARGETS := ./inject:FuzzInjector ./inject:FuzzQuickInsertionPoint ./module:FuzzRedirect ./betterauth:FuzzReadCredential ./betterauth:FuzzReadCredentialShortcut ./caddyfile:FuzzCaddyfile

.PHONY: test setup lint unit fuzz-brief fuzz demo build bench docker-check clean

test: setup lint unit fuzz-brief

setup:
	./scripts/setup.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

unit:
	$(GO) test -race -timeout 40m ./...

# Each fuzz target briefly (make test) or for FUZZTIME each (make fuzz FUZZTIME=5m).
fuzz-brief:
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
	  echo "fuzz $$fn ($(FUZZTIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; done

fuzz:
	$(MAKE) fuzz-brief FUZZTIME=$(if $(filter 5s,$(FUZZTIME)),2m,$(FUZZTIME))

build:
	$(GO) build -o bin/caddy ./cmd/caddy

# The load figures side by side on this machine (wrk, the real Better Auth,
# one Caddy), the memory and latency checks, then the Go benchmarks;
# BENCHMARKS.md says what each shows. About 7 minutes; loopback only.
bench:
	GO=$(GO) ./bench/run.sh

demo:
	./examples/demo/run.sh

# The Dockerfile's build step and the compose example, checked without a
# Docker engine (scripts/docker-check.sh says what it checks).
docker-check:
	./scripts/docker-check.sh

clean:
	rm -rf bin
