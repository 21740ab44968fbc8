#!/usr/bin/env bash
# Build the static gatehouse binary exactly as deploy/Dockerfile's build stage does, then prove
# it is statically linked. The Dockerfile runs this very script, and the chart tests
# (deploy/charttest) run it too, since `docker build` is not available everywhere.
#
#   deploy/build-static.sh OUTPUT            e.g. deploy/build-static.sh bin/gatehouse
#
# Environment:
#   VERSION        version stamped into the binary (default: git describe, else "dev")
#   GOOS, GOARCH   cross-compile (the Dockerfile passes TARGETOS/TARGETARCH)
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
	echo "usage: $0 OUTPUT" >&2
	exit 2
fi
out=$1
case $out in
/*) ;;
*) out="$PWD/$out" ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# The toolchain the project pins (go fetches it through the module proxy when the local go is
# older). No cgo: the SQLite driver is pure Go and the image has no libc.
export GOTOOLCHAIN=go1.27.3
export CGO_ENABLED=0

module=$(go list -m)
if [ -z "${VERSION:-}" ]; then
	VERSION=$(git describe --always --dirty 2>/dev/null || echo dev)
fi
ldflags="-s -w -X ${module}/internal/cli.Version=${VERSION}"

mkdir -p "$(dirname "$out")"
go build -trimpath -ldflags "$ldflags" -o "$out" ./cmd/gatehouse

# Statically linked? The build settings say so on every platform...
info=$(go version -m "$out")
if ! grep -Eq '^[[:space:]]*build[[:space:]]+CGO_ENABLED=0$' <<<"$info"; then
	echo "build-static: $out was not built with CGO_ENABLED=0:" >&2
	echo "$info" >&2
	exit 1
fi
if ! grep -Eq '^[[:space:]]*build[[:space:]]+-trimpath=true$' <<<"$info"; then
	echo "build-static: $out was not built with -trimpath" >&2
	exit 1
fi
# ...and when the host has `file` (not in every builder image), the ELF header agrees.
if command -v file >/dev/null 2>&1; then
	desc=$(file -b "$out")
	case $desc in
	*"dynamically linked"* | *"interpreter"*)
		echo "build-static: $out is dynamically linked: $desc" >&2
		exit 1
		;;
	esac
fi
echo "build-static: $out ($(go env GOOS)/$(go env GOARCH), version $VERSION, static)"
