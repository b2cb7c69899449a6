#!/usr/bin/env bash
# Compares two builds of the hot-path micro-benchmarks by instructions
# executed (valgrind's callgrind), which stay the same run after run on a
# busy machine, unlike times. Each benchmark runs a fixed 50 x 20 iterations,
# so the counts are comparable; about 92 M of each is divan's own fixed cost.
#
#   cargo bench -p bulwark --bench hot_paths --no-run   # in each checkout
#   bench/instructions.sh OLD_BINARY NEW_BINARY
set -euo pipefail
old=$1
new=$2
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
out=$(mktemp -d)
benches=$("$new" --list | sed -n 's/^[├╰]─ //p')
total=$(echo "$benches" | wc -l)
printf '| benchmark | old (instructions) | new | change |\n|---|---|---|---|\n'
n=0
for bench in $benches; do
    n=$((n + 1))
    printf '[%d/%d] %s\n' "$n" "$total" "$bench" >&2
    count() {
        valgrind --tool=callgrind --callgrind-out-file="$out/cg.out" "$1" --bench "$bench" \
            --sample-count 50 --sample-size 20 >/dev/null 2>"$out/log"
        grep -o 'Collected : [0-9]*' "$out/log" | awk '{print $3}'
    }
    a=$(count "$old")
    b=$(count "$new")
    awk -v n="$bench" -v a="$a" -v b="$b" \
        'BEGIN { printf "| `%s` | %.1f M | %.1f M | %+.2f %% |\n", n, a / 1e6, b / 1e6, 100 * (b - a) / a }'
done
rm -rf "$out"
