# Dockerfile - the shufflenet-serve image: build on debian:bookworm, run on bookworm-slim.
#
#   docker build -t shufflenet-serve .
#   docker run --rm -p 127.0.0.1:8080:8080 -v "$PWD/models:/models:ro" shufflenet-serve
#
# Models: /models/shufflenet-server.json (a config file), else every /models/*.safetensors,
# else a model baked in with --build-arg MODEL=models/FILE (.safetensors, or a PyTorch
# checkpoint converted at build time), else synthetic weights with a loud warning.
# Arguments after the image name go to the server (e.g. --model g3=/models/g3.safetensors);
# a first argument that is not an option runs that command instead (e.g. shufflenet info).
#
# Multi-arch: nothing here is x86-specific. The build stage compiles for the platform it runs
# on, and the Makefile picks the kernels from the compiler's target (AVX2/AVX-512 on x86-64,
# NEON on arm64; the engine chooses among them at run time). So
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/shufflenet-serve --push .
# builds both (arm64 under QEMU, or on an arm64 builder node); `make docker-arm64` builds and
# runs the arm64 image here without buildx (docker/arm64.sh).

# ---- build ---------------------------------------------------------------------------
FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc libc6-dev make pkg-config binutils \
      libjpeg62-turbo-dev libpng-dev libjansson-dev libmicrohttpd-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only what the binaries are built from, so edits elsewhere keep this layer cached.
COPY Makefile ./
COPY engine engine
COPY common common
COPY server server
COPY tools tools
COPY config config
RUN make -j"$(nproc)" build/shufflenet-server build/shufflenet \
 && strip build/shufflenet-server build/shufflenet

# ---- optional baked model ---------------------------------------------------------------
FROM build AS model
ARG MODEL=
ARG MODEL_NAME=
COPY . /ctx
RUN set -e; mkdir -p /out/models; \
    if [ -n "$MODEL" ]; then \
      f="/ctx/$MODEL"; \
      [ -f "$f" ] || { echo "MODEL=$MODEL: no such file in the build context" >&2; exit 1; }; \
      name="${MODEL_NAME:-$(basename "$MODEL" | sed -e 's/\.safetensors$//' -e 's/\.pth\.tar$//' -e 's/\.pth$//')}"; \
      case "$f" in \
        *.safetensors) cp "$f" "/out/models/$name.safetensors" ;; \
        *) build/shufflenet convert "$f" "/out/models/$name.safetensors" ;; \
      esac; \
      build/shufflenet info "/out/models/$name.safetensors" >/dev/null; \
    fi

# ---- runtime -----------------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libjpeg62-turbo libpng16-16 libjansson4 libmicrohttpd12 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 shufflenet \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin shufflenet \
 && mkdir -p /models /usr/share/shufflenet/models
COPY --from=build /src/build/shufflenet-server /src/build/shufflenet /usr/local/bin/
COPY --from=build /src/config/imagenet-classes.tsv /usr/share/shufflenet/
COPY --from=model /out/models/ /usr/share/shufflenet/models/
COPY docker/entrypoint.sh /usr/local/bin/shufflenet-entrypoint
# Fail the build, not the first start, when a runtime library is missing.
RUN ! ldd /usr/local/bin/shufflenet-server /usr/local/bin/shufflenet | grep 'not found'

ENV SHUFFLENET_LISTEN=0.0.0.0:8080
# Relative model paths in a config file resolve from /, so the project's
# config/shufflenet-server.json ("models/...") finds the models volume as it is.
WORKDIR /
USER shufflenet:shufflenet
VOLUME ["/models"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/shufflenet-server", "--healthcheck"]
# docker stop sends SIGTERM: the server (PID 1 via exec) stops accepting, finishes what it
# admitted and exits 0. Give it longer than drain_timeout_ms with docker stop -t if needed.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/shufflenet-entrypoint"]
CMD []
