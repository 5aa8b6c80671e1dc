#!/bin/sh
# docker/test.sh - what `make docker-test` runs: build the image, run it and check it, then
# the compose stack with Prometheus; tear everything down, also on failure.
#
# Unattended on a machine with nothing installed: installs docker.io, docker-compose and
# debootstrap when missing, starts a private dockerd (docker/dockerd.sh) unless a daemon
# answers already, and makes the base images from Debian's mirror (docker/base-images.sh).
# Leaves no daemon, container, network link or mount behind. Traffic goes to 127.0.0.1 only.
#
# Models: converts $SN_SHARED/models/megvii-shufflenet-v1-g3-0.5x.pth.tar (default
# ../shared) with the image's own CLI into a temporary folder mounted at /models; without
# it, a synthetic model made the same way. Nothing of ../shared goes into the image.
set -eu
SN_HERE=$(cd "$(dirname "$0")" && pwd)
SN_ROOT=$(cd "$SN_HERE/.." && pwd)
# shellcheck source=docker/lib.sh
. "$SN_HERE/lib.sh"
cd "$SN_ROOT"

SHARED=${SN_SHARED:-../shared}
IMAGE=shufflenet-serve:test
BAKED=shufflenet-serve:test-baked
PROM=${PROMETHEUS_IMAGE:-prom/prometheus:v2.42.0}
NAME=sn-docker-test-$$
PROJECT=sntest$$
MAX_MB=150
t_start=$(date +%s)
passed=0
scratch=$(mktemp -d /tmp/sn-docker-test.XXXXXX)
bake_file=models/docker-test-bake-$$.safetensors
made_models_dir=0
compose_up=0

pass() {
    passed=$((passed + 1))
    sn_log "ok $passed - $*"
}
fail() {
    sn_log "FAIL: $*"
    printf 'docker-test: %d passed, 1 failed\n' "$passed"
    exit 1
}
compose() {
    SHUFFLENET_IMAGE=$IMAGE SN_MODELS_DIR=$scratch/models SN_BIND=127.0.0.1 SN_PORT='' \
        PROMETHEUS_PORT='' PROMETHEUS_IMAGE=$PROM \
        docker-compose -p "$PROJECT" -f "$SN_HERE/compose.yaml" "$@"
}

cleanup() {
    rc=$?
    set +e
    if [ "$compose_up" = 1 ]; then
        [ "$rc" = 0 ] || compose logs --tail 30 >&2 2>&1
        compose down -v --remove-orphans >/dev/null 2>&1
    fi
    if [ -n "${DOCKER_HOST:-}${SN_DOCKER_DIR:-}" ] || docker version >/dev/null 2>&1; then
        for c in "$NAME" "$NAME-bake" "$NAME-cfg" "$NAME-mem"; do docker rm -f "$c" >/dev/null 2>&1; done
        # On someone's own daemon, take back the test tags too.
        [ -n "$SN_DOCKER_DIR" ] || docker rmi "$IMAGE" "$BAKED" >/dev/null 2>&1
    fi
    rm -f "$bake_file"
    [ "$made_models_dir" = 0 ] || rmdir models 2>/dev/null
    sn_docker_down
    rm -rf "$scratch"
    sn_log "docker-test took $(($(date +%s) - t_start)) s"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# GET/POST to 127.0.0.1: http_code [curl args...]; the body lands in $scratch/body.
http_code() { curl -sS --max-time 20 -o "$scratch/body" -w '%{http_code}' "$@" 2>/dev/null || true; }

# wait_until SECONDS DESCRIPTION COMMAND...: retry COMMAND every 0.5 s.
wait_until() {
    limit=$1 what=$2
    shift 2
    end=$(($(date +%s) + limit))
    until "$@"; do
        [ "$(date +%s)" -lt "$end" ] || fail "$what (waited $limit s)"
        sleep 0.5
    done
}
ready() { [ "$(http_code "http://$1/readyz")" = 200 ]; }
healthy() { [ "$(docker inspect -f '{{.State.Health.Status}}' "$1" 2>/dev/null)" = healthy ]; }
host_port() { docker port "$1" "$2" | sed -n 's/^127\.0\.0\.1:\([0-9]*\)$/127.0.0.1:\1/p' | head -1; }

# ---- set-up ------------------------------------------------------------------------------
sn_need_packages
sn_docker_up build/docker-cache || fail "no Docker daemon"
t_build=$(date +%s)
sn_docker_build "$IMAGE" || fail "docker build"
pass "image built in $(($(date +%s) - t_build)) s"

# ---- the image ---------------------------------------------------------------------------
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
[ "$size" -lt $((MAX_MB * 1000000)) ] || fail "image is $((size / 1000000)) MB, over $MAX_MB MB"
pass "image size $((size / 1000000)) MB (< $MAX_MB MB)"

user=$(docker image inspect -f '{{.Config.User}}' "$IMAGE")
uid=$(docker run --rm --entrypoint id "$IMAGE" -u)
if [ -z "$user" ] || [ "$uid" = 0 ]; then fail "image runs as root (User=\"$user\", uid $uid)"; fi
pass "runs as user $user (uid $uid)"

# Models for the run, made by the image's own CLI (which also tests that it runs there).
mkdir -p "$scratch/models"
chmod 755 "$scratch/models"
ckpt=$SHARED/models/megvii-shufflenet-v1-g3-0.5x.pth.tar
trained=0
if [ -f "$ckpt" ]; then
    ckpt_dir=$(cd "$(dirname "$ckpt")" && pwd)
    docker run --rm --user "$(id -u):$(id -g)" -v "$ckpt_dir:/in:ro" -v "$scratch/models:/out" \
        "$IMAGE" shufflenet convert "/in/$(basename "$ckpt")" /out/g3.safetensors >/dev/null ||
        fail "shufflenet convert in the image"
    trained=1
    pass "converted $(basename "$ckpt") with the image's CLI (read-only mount)"
else
    echo "SKIP: ../shared not found: testing with a synthetic model" >&2
    docker run --rm --user "$(id -u):$(id -g)" -v "$scratch/models:/out" "$IMAGE" \
        shufflenet synth --groups 3 --width 0.5 -o /out/g3.safetensors >/dev/null ||
        fail "shufflenet synth in the image"
fi
chmod 644 "$scratch/models"/*.safetensors

# A test image: a photo from ../shared, else a PNG made here (a gradient, stored
# uncompressed: over a megabyte, so that the drain test's uploads take their time).
photo=$SHARED/images/skimage_coffee.png
if [ ! -f "$photo" ]; then
    photo=$scratch/gradient.png
    python3 - "$photo" <<'EOF' || fail "making a test PNG"
import struct, sys, zlib
w, h = 800, 600
raw = b"".join(b"\0" + b"".join(bytes((x % 256, y % 256, (x * y) % 256)) for x in range(w))
               for y in range(h))
chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) \
    + chunk(b"IDAT", zlib.compress(raw, 0)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
EOF
fi

# ---- run: readiness, health, classify, metrics --------------------------------------------
docker run -d --name "$NAME" -p 127.0.0.1::8080 -v "$scratch/models:/models:ro" "$IMAGE" >/dev/null ||
    fail "docker run"
addr=$(host_port "$NAME" 8080)
[ -n "$addr" ] || fail "no port published on 127.0.0.1"
wait_until 30 "/readyz at $addr never answered 200" ready "$addr"
pass "/readyz 200 at $addr"
docker logs "$NAME" 2>&1 | grep -q 'serving 1 model(s) from /models' || fail "models from /models not used"
pass "entrypoint found the model in the /models volume"
pid1=$(docker exec "$NAME" cat /proc/1/comm)
[ "$pid1" = shufflenet-serv ] || fail "PID 1 in the container is \"$pid1\", not the server"
pass "the server runs as PID 1 (the entrypoint execs it)"
wait_until 60 "health status never turned healthy" healthy "$NAME"
pass "health status healthy (HEALTHCHECK: shufflenet-server --healthcheck)"

code=$(http_code -H 'Content-Type: image/png' --data-binary "@$photo" "http://$addr/classify?top_k=5")
[ "$code" = 200 ] || fail "POST /classify: $code $(cat "$scratch/body")"
top1=$(python3 -c 'import json, sys
print(json.load(open(sys.argv[1]))["results"][0]["top_k"][0]["label"])' "$scratch/body" 2>/dev/null ||
    true)
[ -n "$top1" ] || fail "POST /classify: no top-1 label in $(head -c 400 "$scratch/body")"
if [ "$trained" = 1 ] && [ "$photo" = "$SHARED/images/skimage_coffee.png" ]; then
    [ "$top1" = espresso ] || fail "POST /classify: top-1 \"$top1\", expected espresso"
fi
pass "POST /classify 200, top-1 \"$top1\""

head -c 2000 "$photo" >"$scratch/truncated"
code=$(http_code -H 'Content-Type: application/octet-stream' --data-binary "@$scratch/truncated" "http://$addr/classify")
[ "$code" = 400 ] || fail "POST /classify of a truncated image: $code, expected 400"
pass "POST /classify of a truncated image: 400"

code=$(http_code "http://$addr/metrics")
[ "$code" = 200 ] || fail "GET /metrics: $code"
cp "$scratch/body" "$scratch/metrics"
grep -q '^shufflenet_requests_total{.*code="200".*} [1-9]' "$scratch/metrics" ||
    fail "/metrics has no shufflenet_requests_total for the 200"
pass "/metrics counts the request"
# Every metric the dashboard uses is exported (histograms by their _bucket/_sum/_count).
grep -o '\(shufflenet\|process\)_[a-z_]*' "$SN_HERE/grafana/shufflenet-dashboard.json" | sort -u >"$scratch/used"
while read -r m; do
    grep -q "^${m}[{ ]" "$scratch/metrics" || fail "dashboard metric $m is not exported"
done <"$scratch/used"
pass "every metric of the Grafana dashboard is exported"
docker run --rm -i --entrypoint promtool "$PROM" check metrics <"$scratch/metrics" >"$scratch/promtool" 2>&1 ||
    fail "promtool check metrics: $(cat "$scratch/promtool")"
pass "promtool check metrics"

# ---- drain on docker stop ----------------------------------------------------------------
# Slow uploads (curl --limit-rate, about 4 s each whatever the file's size) are
# mid-request when SIGTERM comes: every one must be answered.
n=4
rate=$(($(wc -c <"$photo") / 4 / 1024 + 1))k
i=0
while [ $i -lt $n ]; do
    curl -sS --max-time 60 --limit-rate "$rate" -o /dev/null -w '%{http_code}' \
        -H 'Content-Type: image/png' --data-binary "@$photo" "http://$addr/classify" \
        >"$scratch/drain.$i" 2>&1 &
    i=$((i + 1))
done
inflight() {
    # the scrape counts itself
    v=$(curl -sS --max-time 5 "http://$addr/metrics" | sed -n 's/^shufflenet_inflight_requests \([0-9]*\).*/\1/p')
    [ "${v:-0}" -gt $n ]
}
wait_until 10 "the slow uploads never were in flight together" inflight
t_stop=$(date +%s)
docker stop -t 40 "$NAME" >/dev/null
stop_s=$(($(date +%s) - t_stop))
wait
exit_code=$(docker inspect -f '{{.State.ExitCode}}' "$NAME")
answered=0
i=0
while [ $i -lt $n ]; do
    [ "$(cat "$scratch/drain.$i")" = 200 ] && answered=$((answered + 1))
    i=$((i + 1))
done
sn_log "drain: $n slow uploads ($rate/s) in flight," \
    "docker stop took $stop_s s, exit code $exit_code, $answered/$n answered 200"
[ "$exit_code" = 0 ] || fail "exit code $exit_code after docker stop; logs: $(docker logs --tail 5 "$NAME" 2>&1)"
[ "$answered" = $n ] || fail "drain lost requests: $answered/$n answered 200 ($(cat "$scratch"/drain.* | tr '\n' ' '))"
docker logs "$NAME" 2>&1 | grep -q 'drained' || fail "no drain in the server's log"
pass "docker stop drained: exit 0, $answered/$n in-flight requests answered, $stop_s s"
docker rm "$NAME" >/dev/null

# ---- a config file in the volume, and an environment override -------------------------
mkdir -p "$scratch/cfg"
cp "$scratch/models/g3.safetensors" "$scratch/cfg/"
printf '{"models": {"fromcfg": {"path": "/models/g3.safetensors"}}, "max_batch": 2}\n' \
    >"$scratch/cfg/shufflenet-server.json"
chmod -R a+rX "$scratch/cfg"
docker run -d --name "$NAME-cfg" -p 127.0.0.1::8080 -v "$scratch/cfg:/models:ro" \
    -e SHUFFLENET_MAX_BATCH=4 "$IMAGE" >/dev/null
caddr=$(host_port "$NAME-cfg" 8080)
wait_until 30 "config image never ready" ready "$caddr"
[ "$(http_code "http://$caddr/v1/models/fromcfg")" = 200 ] || fail "model of /models/shufflenet-server.json not served"
grep -q '"max_batch": *4' "$scratch/body" || fail "SHUFFLENET_MAX_BATCH=4 not applied: $(cat "$scratch/body")"
pass "/models/shufflenet-server.json is used; SHUFFLENET_MAX_BATCH overrides it"
docker rm -f "$NAME-cfg" >/dev/null

# ---- a model baked in with --build-arg MODEL ---------------------------------------------
[ -d models ] || made_models_dir=1
mkdir -p models
cp "$scratch/models/g3.safetensors" "$bake_file"
sn_docker_build "$BAKED" --build-arg "MODEL=$bake_file" --build-arg MODEL_NAME=baked ||
    fail "docker build --build-arg MODEL"
rm -f "$bake_file"
docker run -d --name "$NAME-bake" -p 127.0.0.1::8080 "$BAKED" >/dev/null
baddr=$(host_port "$NAME-bake" 8080)
wait_until 30 "baked image never ready" ready "$baddr"
[ "$(http_code "http://$baddr/v1/models/baked")" = 200 ] || fail "baked model not served"
pass "--build-arg MODEL bakes a model in (served as \"baked\" without a volume)"
docker rm -f "$NAME-bake" >/dev/null

# ---- memory: a 512 MiB container under a flood of 14 MB uploads ----------------------------
# The budget defaults to half the cgroup limit; 200 concurrent uploads of a 14 MB image must
# be answered 200 or 503 (tests/integration/flood.py), and the container must survive them.
# (a long request deadline: on a busy machine a queued upload may wait more than the default
# 10 s, and its 504 would not be what this checks)
docker run -d --name "$NAME-mem" --memory 512m --memory-swap 512m -p 127.0.0.1::8080 \
    -e SHUFFLENET_REQUEST_TIMEOUT_MS=60000 -v "$scratch/models:/models:ro" "$IMAGE" >/dev/null ||
    fail "docker run --memory 512m"
maddr=$(host_port "$NAME-mem" 8080)
wait_until 30 "the 512 MiB container never was ready" ready "$maddr"
docker logs "$NAME-mem" 2>&1 | grep -q 'memory budget 268435456 bytes' ||
    fail "memory budget is not half of 512 MiB: $(docker logs "$NAME-mem" 2>&1 | grep budget)"
python3 tests/integration/flood.py "$maddr" 200 >"$scratch/flood" 2>&1 ||
    fail "flood of the 512 MiB container: $(cat "$scratch/flood")"
state=$(docker inspect -f '{{.State.OOMKilled}} {{.State.Running}}' "$NAME-mem")
[ "$state" = "false true" ] || fail "after the flood: OOMKilled, Running = $state"
code=$(http_code -H 'Content-Type: image/png' --data-binary "@$photo" "http://$maddr/classify")
[ "$code" = 200 ] || fail "the 512 MiB container is not serving after the flood: $code"
peak=$(docker exec "$NAME-mem" cat /sys/fs/cgroup/memory.peak 2>/dev/null || echo unknown)
pass "--memory 512m, $(sed 's/^flood: //' "$scratch/flood"); not OOM-killed, still serving; cgroup memory.peak $peak bytes"
docker rm -f "$NAME-mem" >/dev/null

# ---- compose: the service plus Prometheus --------------------------------------------------
docker run --rm -v "$SN_HERE/prometheus.yml:/etc/prometheus/prometheus.yml:ro" \
    --entrypoint promtool "$PROM" check config /etc/prometheus/prometheus.yml >/dev/null 2>&1 ||
    fail "promtool check config docker/prometheus.yml"
pass "promtool check config docker/prometheus.yml"
compose_up=1
compose up -d >"$scratch/compose.log" 2>&1 || fail "docker-compose up: $(tail -5 "$scratch/compose.log")"
pass "docker-compose up (prometheus waited for the service to be healthy)"
saddr=$(compose port shufflenet 8080 | sed -n 's/^127\.0\.0\.1:/127.0.0.1:/p')
paddr=$(compose port prometheus 9090 | sed -n 's/^127\.0\.0\.1:/127.0.0.1:/p')
if [ -z "$saddr" ] || [ -z "$paddr" ]; then fail "compose ports not published on 127.0.0.1"; fi
wait_until 30 "compose service never ready" ready "$saddr"
code=$(http_code -H 'Content-Type: image/png' --data-binary "@$photo" "http://$saddr/classify")
[ "$code" = 200 ] || fail "compose: POST /classify $code"
scraped() {
    [ "$(http_code "http://$paddr/api/v1/query?query=shufflenet_requests_total")" = 200 ] &&
        python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["data"]["result"];
sys.exit(0 if any(float(x["value"][1]) >= 1 and x["metric"].get("job") == "shufflenet" for x in r) else 1)' \
            "$scratch/body"
}
wait_until 60 "Prometheus never had shufflenet_requests_total" scraped
pass "Prometheus scraped shufflenet:8080: query shufflenet_requests_total answers"
compose down -v --remove-orphans >/dev/null 2>&1 || fail "docker-compose down"
compose_up=0
pass "docker-compose down"

# ---- teardown, checked ---------------------------------------------------------------------
if [ -n "$SN_DOCKER_DIR" ]; then
    dir=$SN_DOCKER_DIR
    pid=$(cat "$dir/dockerd.pid" 2>/dev/null || true)
    sn_docker_down
    [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null || fail "dockerd $pid still running"
    ! grep -qF "$dir" /proc/self/mounts || fail "mounts left under $dir"
    ! ip link show docker0 >/dev/null 2>&1 || fail "docker0 link left behind"
    ! ip -o link show | grep -q ' br-' || fail "a compose bridge link was left behind"
    pass "teardown: no daemon, mount or network link left"
fi
printf 'docker-test: %d passed, 0 failed\n' "$passed"
