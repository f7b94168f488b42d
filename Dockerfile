# syntax=docker/dockerfile:1
# privnum: one static binary. docker build -t privnum .
# Default command: `privnum serve` (call control over ARI). Other subcommands
# run the same way, e.g.  docker run --rm privnum pool list

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/privnum ./cmd/privnum

# Static binary: no libc or shell needed. It includes CA certificates for
# rediss:// and https:// ARI.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/privnum /usr/local/bin/privnum
USER nonroot:nonroot
# /metrics and /healthz, when PRIVNUM_METRICS_LISTEN is set to a
# non-loopback address (the default 127.0.0.1:9464 is unreachable from outside
# the container)
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/privnum"]
CMD ["serve"]
