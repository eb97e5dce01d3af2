# syntax=docker/dockerfile:1
#
# One image with dsrflow's three binaries: worker, api and dsr (the CLI).
#
#   docker build -t dsrflow .
#   docker run --rm --env-file deploy/dsrflow.env dsrflow worker
#   docker run --rm --env-file deploy/dsrflow.env -p 8080:8080 dsrflow api
#   docker run --rm dsrflow dsr --help
#
# Configuration is the environment alone (docs/operations.md); nothing secret is
# in the image. docker-compose.yml runs the whole stack from it.

ARG GO_VERSION=1.26
ARG ALPINE_VERSION=3.22

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
# The SQLite driver (modernc.org/sqlite) and pgx are pure Go: a static binary.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/worker ./worker && \
    CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/api ./api && \
    CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/dsr ./starter && \
    mkdir -p /out/var/results

# Alpine rather than distroless: its busybox wget serves the health checks,
# and the CA bundle lets the worker reach Mixpanel over HTTPS.
FROM alpine:${ALPINE_VERSION}
RUN addgroup -S -g 10001 dsrflow && \
    adduser -S -D -H -u 10001 -G dsrflow -h /var/lib/dsrflow dsrflow
COPY --from=build /out/worker /out/api /out/dsr /usr/local/bin/
# /var/lib/dsrflow holds the SQLite ledger (when DSR_DB is not PostgreSQL) and
# the access/portability results; mount a volume there. A new named volume
# takes this directory's owner, so the non-root user can write to it.
COPY --from=build --chown=10001:10001 /out/var /var/lib/dsrflow
WORKDIR /var/lib/dsrflow
ENV API_ADDR=0.0.0.0:8080 \
    WORKER_METRICS_ADDR=0.0.0.0:9090 \
    DSR_DB=/var/lib/dsrflow/dsrflow.db \
    DSR_RESULTS_DIR=/var/lib/dsrflow/results
USER 10001:10001
# 8080: the API (and its /healthz, /metrics); 9090: the worker's /healthz and /metrics.
EXPOSE 8080 9090
CMD ["api"]
