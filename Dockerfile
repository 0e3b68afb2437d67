# syntax=docker/dockerfile:1
#
# HelpDeskFlow's one binary in a minimal image, for every role (`serve --roles api`, relay,
# projector, dispatcher), `migrate` and the admin commands:
#
#   docker build -t helpdeskflow .
#   docker run --rm helpdeskflow help
#
# The build flags are in scripts/build-static.sh, which `make test` runs too and then checks that
# the binary is static (cmd/helpdeskflow/image_test.go); that test also checks that this file's
# HEALTHCHECK, ENTRYPOINT and CMD name real subcommands and flags.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH scripts/build-static.sh /out/helpdeskflow

# No shell, no package manager, no libc: the static binary, CA certificates (webhooks, Slack,
# Gmail, Shopify and Stripe over HTTPS), time zones, and the nonroot user (uid 65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/helpdeskflow /usr/local/bin/helpdeskflow
USER 65532:65532
WORKDIR /home/nonroot
# The API on every interface of the container; /metrics on a port of its own that only Prometheus
# reaches (the API port then does not serve it). Override with -e or the orchestrator's env.
ENV HDF_HTTP_ADDR=:8080 \
    HDF_METRICS_ADDR=:9100
EXPOSE 8080 9100
# /readyz on HDF_HTTP_ADDR: every role answers it (Postgres, Kafka, and ClickHouse where used).
HEALTHCHECK --interval=10s --timeout=6s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/helpdeskflow", "healthcheck", "--timeout", "5s"]
ENTRYPOINT ["/usr/local/bin/helpdeskflow"]
CMD ["serve"]
