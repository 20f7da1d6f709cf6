#!/usr/bin/env bash
# `gatehouse audit export` of 100k and 1M realistic audit entries, as JSON Lines and as CSV:
# entries per second, and peak RSS, which must not grow with the number of entries (the
# export streams; nothing is collected).
#
#   bash benches/e2e/export.sh
#   SIZES="100000 1000000 3000000" ROUNDS=5 bash benches/e2e/export.sh
#   CARGO="flock /tmp/cargo.lock cargo" bash benches/e2e/export.sh     # a shared build machine
#
# Needs GNU time (/usr/bin/time; `apt-get install -y time`). Each store is seeded once by
# `benches/examples/seed_audit.rs` (about 0.5 KB an entry on disk).
set -euo pipefail
cd "$(dirname "$0")/../.."

SIZES=${SIZES:-"100000 1000000"}
ROUNDS=${ROUNDS:-3}
CARGO=${CARGO:-cargo}
target=${CARGO_TARGET_DIR:-target}
[ -x /usr/bin/time ] || { echo "needs GNU time: apt-get install -y time" >&2; exit 1; }

$CARGO build --release -q -p gatehouse
$CARGO build --release -q -p gatehouse-benches --example seed_audit
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Copies, so a build running meanwhile cannot swap the binaries under the bench.
cp "$target/release/gatehouse" "$target/release/examples/seed_audit" "$work/"

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

printf '%-9s %-6s %9s %11s %15s\n' entries format seconds entries/s "peak RSS (KiB)"
declare -A rss
for n in $SIZES; do
  dir="$work/$n"
  mkdir -p "$dir"
  "$work/seed_audit" "$dir/gatehouse.db" "$n" 2>"$dir/seed.log"
  printf '[gateway]\nstate = "sqlite:%s/gatehouse.db"\nrecordings = "%s/recordings"\n' \
    "$dir" "$dir" > "$dir/gatehouse.toml"
  for format in jsonl csv; do
    : > "$dir/secs" ; : > "$dir/kib"
    for _ in $(seq 1 "$ROUNDS"); do
      start=$(date +%s%N)
      /usr/bin/time -v -o "$dir/time.txt" "$work/gatehouse" --config "$dir/gatehouse.toml" \
        audit export --format "$format" --out /dev/null 2>"$dir/export.log"
      end=$(date +%s%N)
      grep -q "^exported $n entries$" "$dir/export.log" \
        || { echo "export of $n entries said: $(cat "$dir/export.log")" >&2; exit 1; }
      echo "$(( (end - start) / 1000 ))" >> "$dir/secs"
      sed -n 's/.*Maximum resident set size (kbytes): //p' "$dir/time.txt" >> "$dir/kib"
    done
    us=$(median < "$dir/secs")
    kib=$(sort -n "$dir/kib" | tail -1)
    rss[$n.$format]=$kib
    printf '%-9s %-6s %9.2f %11d %15d\n' "$n" "$format" "$(awk -v us="$us" 'BEGIN { print us / 1e6 }')" \
      "$(( n * 1000000 / us ))" "$kib"
  done
  rm -rf "$dir"
done

# Constant memory: the largest store's peak RSS against the smallest's.
first=${SIZES%% *}
last=${SIZES##* }
for format in jsonl csv; do
  echo "$format: peak RSS at $last entries is $(awk -v a="${rss[$last.$format]}" -v b="${rss[$first.$format]}" 'BEGIN { printf "%.2f", a / b }')x that at $first"
done
