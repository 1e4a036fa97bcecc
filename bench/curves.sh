#!/usr/bin/env bash
# The curve workloads side by side: CPython (bench/python_curves.py) and
# multiproc-bench alternately, several rounds, then one table of medians
# (median over rounds) with each row's floor and CPython's best start
# method.
#
#   bench/curves.sh [-r ROUNDS] [--pin] [--quick] [--only NAME[,NAME...]]
#                   [--py-args "ARGS"]
#
#   -r ROUNDS   alternations (default 3)
#   --pin       both on CPU 0 (taskset -c 0)
#   --quick     fewer and smaller samples: a smoke test, not a comparison
#   --only      workloads or curves (pipe_bulk, queue_producers, spawn_many)
#   --py-args   more arguments for python_curves.py (--methods fork, say)
#   OUT_DIR=DIR where the JSON lines are kept (default: a new temporary folder)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rounds=3 pin=() quick=() py_args=() only=pipe_bulk,queue_producers,spawn_many
declare -A curve=(
  [pipe_bulk]=pipe_bulk_64,pipe_bulk_4096,pipe_bulk_65536,pipe_bulk_1048576,pipe_bulk_16777216
  [queue_producers]=queue_producers_1,queue_producers_2,queue_producers_4,queue_producers_8
  [spawn_many]=spawn_many_1,spawn_many_8,spawn_many_32,spawn_many_128
)
while [ $# -gt 0 ]; do
  case "$1" in
    -r) rounds=$2; shift 2 ;;
    --pin) pin=(taskset -c 0); shift ;;
    --quick) quick=(--quick); shift ;;
    --only) only=$2; shift 2 ;;
    --py-args) read -ra py_args <<<"$2"; shift 2 ;;
    *) echo "usage: $0 [-r ROUNDS] [--pin] [--quick] [--only NAME[,NAME...]] [--py-args ARGS]" >&2; exit 2 ;;
  esac
done
# A curve's name stands for its workloads.
names=()
IFS=, read -ra wanted <<<"$only"
for w in "${wanted[@]}"; do names+=("${curve[$w]:-$w}"); done
only=$(IFS=,; echo "${names[*]}")
cargo build --release -q -p multiproc-bench --manifest-path "$here/../Cargo.toml"
bench=$(cd "$here/.." && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/multiproc-bench
out=${OUT_DIR:-$(mktemp -d)}
mkdir -p "$out"
: >"$out/python.jsonl"; : >"$out/other.jsonl"
for ((i = 1; i <= rounds; i++)); do
  echo "# round $i/$rounds: python" >&2
  "${pin[@]}" python3 "$here/python_curves.py" "${quick[@]}" "${py_args[@]}" --only "$only" >>"$out/python.jsonl"
  echo "# round $i/$rounds: multiproc" >&2
  "${pin[@]}" "$bench" "${quick[@]}" --only "$only" >>"$out/other.jsonl"
done
python3 "$here/python_curves.py" --compare "$out/python.jsonl" "$out/other.jsonl"
echo "# raw lines kept in $out" >&2
