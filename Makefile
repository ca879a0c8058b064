# dcc — a fair compile farm. `make demo` shows it working; `make test` is what CI runs.
GO      ?= go
BIN     := $(CURDIR)/bin
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/dcc-farm/dcc/internal/buildinfo.Version=$(VERSION)
FUZZTIME ?= 200000x

.PHONY: all build vet test unit fuzz demo deps bench clean

all: build

# Static binaries (CGO_ENABLED=0): a dcc process starts about 0.8 ms
# sooner without the dynamic loader and libc, on every compile
# (docs/benchmarks.md); nothing here needs cgo (Go's own DNS resolver).
build:
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# deps installs what the tests use beyond Go and gcc (Debian packages).
deps:
	@bash scripts/deps.sh

# unit + integration tests (integration tests build and run the real binaries)
test: deps vet
	$(GO) test -race -count=1 -timeout 15m ./...
	$(MAKE) fuzz

# a short run of every fuzz target, on top of the committed corpus
fuzz:
	@bash scripts/fuzz.sh $(FUZZTIME)

demo: build
	@bash demo/run.sh

bench: build
	@bash bench/overhead.sh

clean:
	rm -rf $(BIN) demo/build bench/out
