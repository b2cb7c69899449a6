#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 60), one
# after the other, single-process. Needs a nightly toolchain and cargo-fuzz
# (`cargo install cargo-fuzz`); CI has neither and runs the same properties
# as proptests (crates/bulwark/tests/decoders_never_panic.rs).
#
# An input that panics, runs over 10 s, asks for one allocation of 64 MiB or
# more (-malloc_limit_mb: inputs are at most 64 KiB, and the decoders hold
# about 100 bytes per byte at worst) or takes the process past 2 GiB
# (-rss_limit_mb) is a finding: libFuzzer saves it under
# fuzz/artifacts/<target>/ and the script goes on, then lists the targets
# that found something and exits 1. New interesting inputs are added to
# fuzz/corpus/<target>/; keep what is committed small (`cargo fuzz cmin`).
#
#   scripts/fuzz.sh [SECONDS]          FUZZ_TARGETS="sse config" to pick some
#   FUZZ_TARGET_DIR=/tmp/fuzz-target   to build elsewhere than fuzz/target
set -uo pipefail

seconds="${1:-60}"
cd "$(dirname "$0")/../fuzz" || exit 1
target_dir="${FUZZ_TARGET_DIR:-target}"
targets="${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}"

# One build for every target; `run` then finds them built.
cargo +nightly fuzz build --debug-assertions --target-dir "$target_dir" || exit 1

failed=()
for target in $targets; do
    echo "== $target: ${seconds}s"
    if ! cargo +nightly fuzz run --debug-assertions --target-dir "$target_dir" "$target" -- \
        -max_total_time="$seconds" -max_len=65536 -timeout=10 \
        -rss_limit_mb=2048 -malloc_limit_mb=64 -print_final_stats=1; then
        failed+=("$target")
    fi
done

if ((${#failed[@]})); then
    echo "findings in: ${failed[*]} (see fuzz/artifacts/)"
    exit 1
fi
echo "no findings in $(wc -w <<<"$targets") targets, ${seconds}s each"
