# Gatehouse build and test entry points. The machine's default Go is older
# and has known net/http and crypto vulnerabilities: always build with 1.27.3.
export GOTOOLCHAIN := go1.27.3
export CGO_ENABLED ?= 0

GO            ?= go
BIN           := bin/gatehouse
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2
VERSION       ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: run build test deps lint unit e2e bench clean

## run: build and start the server on embedded SQLite under ./data
run: build
	./$(BIN) serve

## build: the static binary, built the way deploy/Dockerfile builds it
build:
	VERSION=$(VERSION) ./deploy/build-static.sh $(BIN)

## test: the whole suite, installing and starting what it needs
test: deps lint build
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 20m ./...
	cd deploy/charttest && $(GO) vet ./... && $(GO) test -count=1 -timeout 15m ./...

deps:
	./scripts/test-deps.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	cd deploy/charttest && $(GO) run $(STATICCHECK) ./...

bench: build
	./bench/run.sh

clean:
	rm -rf bin
