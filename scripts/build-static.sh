#!/bin/sh
# Builds the binary the Docker image ships: static (no cgo, no dynamic
# loader), without local paths (-trimpath) or symbol tables (-s -w). This
# file is the one place its build flags are written: the Dockerfile runs it,
# and so does cmd/helpdeskflow's TestImage_BinaryIsStatic (in `make test`),
# which checks that what it builds is static.
#
#   scripts/build-static.sh OUT     (default: bin/helpdeskflow-static)
#
# GOOS and GOARCH pass through (the Dockerfile sets them per platform);
# GOFLAGS is cleared so that the flags here are all there is.
set -eu
out=${1:-bin/helpdeskflow-static}
case $out in /*) ;; *) out=$PWD/$out ;; esac
cd "$(dirname "$0")/.."
export CGO_ENABLED=0 GOFLAGS=
exec go build -trimpath -buildvcs=false -ldflags='-s -w' -o "$out" ./cmd/helpdeskflow
