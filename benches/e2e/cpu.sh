# Sourced by the e2e benches: CPU time of a process, whole or by thread name, from /proc.
# Throughput ratios swing with whatever else the shared machine runs; the CPU a proxy spends
# per statement moves much less, so the benches print both.

CLK_TCK=$(getconf CLK_TCK)

# cpu_ticks PID: user + system clock ticks of the whole process (all its threads) so far.
cpu_ticks() {
  awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0
}

# thread_ticks PID: "NAME TICKS" per thread name (threads of one name summed), sorted.
thread_ticks() {
  local t
  for t in /proc/"$1"/task/*; do
    printf '%s %s\n' "$(tr ' ' '_' < "$t/comm")" "$(awk '{print $14 + $15}' "$t/stat")"
  done | awk '{a[$1] += $2} END {for (k in a) print k, a[k]}' | sort
}

# us_per_op TICKS OPS: microseconds of CPU per operation.
us_per_op() {
  awk -v t="$1" -v n="$2" -v hz="$CLK_TCK" 'BEGIN {printf "%.1f", (n > 0 ? t * 1e6 / hz / n : 0)}'
}

# thread_breakdown BEFORE_FILE AFTER_FILE OPS: "name N us, ..." per thread name, busiest first.
thread_breakdown() {
  join "$1" "$2" | awk -v n="$3" -v hz="$CLK_TCK" '$3 > $2 {
      printf "%s %.1f\n", $1, ($3 - $2) * 1e6 / hz / n }' \
    | sort -k2 -gr | awk '{printf "%s%s %s us", (NR > 1 ? ", " : ""), $1, $2}'
}

# cpu_summary WHAT GW_BEFORE GW_AFTER NAME TICKS OPS [NAME TICKS OPS]...: prints each proxy's CPU
# per WHAT, Gatehouse's over the TCP relay's (the NAMEs "gatehouse" and "tcp relay"), and
# Gatehouse's by thread (from the thread_ticks files GW_BEFORE and GW_AFTER).
cpu_summary() {
  local what=$1 before=$2 after=$3 line="" gw=0 relay=0 gw_ops=0 us
  shift 3
  while [ $# -ge 3 ]; do
    us=$(us_per_op "$2" "$3")
    line+="${line:+, }$1 $us us"
    [ "$1" = gatehouse ] && { gw=$us; gw_ops=$3; }
    [ "$1" = "tcp relay" ] && relay=$us
    shift 3
  done
  echo "CPU per $what: $line (gatehouse/tcp relay $(awk -v g="$gw" -v r="$relay" \
    'BEGIN {printf "%.2f; target <= 1.50: %s", (r > 0 ? g / r : 0), (r > 0 && g / r <= 1.5 ? "met" : "NOT met")}'))"
  echo "  gatehouse by thread: $(thread_breakdown "$before" "$after" "$gw_ops")"
}

# journal_appends ADMIN_PORT: the gateway's journal writes so far, from its /metrics.
journal_appends() {
  curl -s "http://127.0.0.1:$1/metrics" \
    | awk '$1 == "gatehouse_journal_appends_total" {n = $2} END {print n + 0}'
}

# appends_summary WHAT BEFORE AFTER OPS: journal writes per WHAT between two journal_appends
# readings (under concurrent load, admissions made while others run share one write).
appends_summary() {
  echo "journal writes per $1: $(awk -v a="$2" -v b="$3" -v n="$4" \
    'BEGIN {printf "%.2f", (n > 0 ? (b - a) / n : 0)}') (one per statement would be 1.00)"
}
