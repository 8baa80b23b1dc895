#!/usr/bin/env bash
# GPU check for a machine with a real GPU and no network: builds the `wgpu` feature (and `cuda`
# where it builds), runs the GPU test set on the device and times `wavessm bench` cases on it,
# printing one line per figure:
#   build <feature> ok|failed seconds=<s>
#   adapter <name and graphics API>
#   gpu-tests passed=<n> failed=<n> seconds=<s>
#   bench <device> <case> median_ms=<x> tokens_per_s=<y>
#   bench wgpu-generic <case> ...   (the same on wgpu without the CubeCL kernels)
# Needs nothing from the network: cargo runs --offline, from the crates in ~/.cargo/registry and
# the target dirs (reused when they hold a build; copy them over with the checkout to skip the
# cold builds). Logs go to $WAVESSM_GPU_LOGS (default a temp dir), named in the failed lines.
# Usage: scripts/gpu-check.sh [bench cases...]   (default: s4d s4 mamba ssd model lstm gru transformer)
set -uo pipefail
cd "$(dirname "$0")/.."
export CARGO_NET_OFFLINE=true
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
logs="${WAVESSM_GPU_LOGS:-$(mktemp -d)}"
wgpu_target="${WAVESSM_WGPU_TARGET_DIR:-$HOME/target/wavessm-wgpu}"
cuda_target="${WAVESSM_CUDA_TARGET_DIR:-$HOME/target/wavessm-cuda}"
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(s4d s4 mamba ssd model lstm gru transformer)

# build <feature> <target dir>: the binary and the test binaries; prints the build line.
build() {
    local t0=$SECONDS status=ok
    CARGO_TARGET_DIR="$2" cargo build --release --offline --features "$1" >"$logs/build-$1.log" 2>&1 || status=failed
    if [ "$status" = ok ] && [ "$1" = wgpu ]; then
        CARGO_TARGET_DIR="$2" cargo test --release --offline --features "$1" --test gpu --no-run \
            >>"$logs/build-$1.log" 2>&1 || status=failed
    fi
    echo "build $1 $status seconds=$((SECONDS - t0))$([ "$status" = ok ] || echo " log=$logs/build-$1.log")"
    [ "$status" = ok ]
}

# bench_all <binary> <device> [<label> <bench options>...]: one line per case, labelled <label>
# (default: the device).
bench_all() {
    local bin=$1 dev=$2 label=${3:-$2} case line
    shift $(($# < 3 ? $# : 3))
    for case in "${cases[@]}"; do
        if line=$("$bin" bench "$case" --device "$dev" --steps 5 "$@" 2>>"$logs/bench-$label.log"); then
            echo "bench $label $line"
        else
            echo "bench $label $case failed log=$logs/bench-$label.log"
        fi
    done
}

if build wgpu "$wgpu_target"; then
    t0=$SECONDS
    CARGO_TARGET_DIR="$wgpu_target" cargo test --release --offline --features wgpu --test gpu -- --nocapture \
        >"$logs/gpu-tests.log" 2>&1
    grep -m1 '^wgpu adapter:' "$logs/gpu-tests.log" | sed 's/^wgpu adapter:/adapter/'
    awk -v s=$((SECONDS - t0)) -v lf="$logs/gpu-tests.log" \
        '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
         END { printf "gpu-tests passed=%d failed=%d seconds=%d%s\n", p, f, s, (f || !p) ? " log=" lf : "" }' \
        "$logs/gpu-tests.log"
    bench_all "$wgpu_target/release/wavessm" wgpu
    # The tensor-op path on the same device, against the CubeCL kernels (s4d, mamba) above.
    bench_all "$wgpu_target/release/wavessm" wgpu wgpu-generic --generic-ops
    bench_all "$wgpu_target/release/wavessm" cpu
fi
# CUDA builds only where cubecl's LLVM bundle is already in the cargo cache (it downloads it).
if build cuda "$cuda_target"; then
    bench_all "$cuda_target/release/wavessm" cuda
fi
