#!/usr/bin/env bash
# Core runtime benchmarks, each printed beside a baseline measured in the same run:
#   cold start   `autorun run trivial` (whole process, history write) vs python3 / node
#   throughput   trivial runs per second in one process, history recorded
#   memory       10,000 runs suspended at once: bytes per run
# Usage: bench/run.sh [BUILD_DIR]   (needs hyperfine; node is optional)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
ar="$build/autorun"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/recipes" "$tmp/home" "$tmp/py"
echo 'exports.run = function (event, ctx) { return { ok: true }; };' > "$tmp/recipes/trivial.js"
export AUTORUN_HOME="$tmp/home" AUTORUN_RECIPES="$tmp/recipes"
"$ar" run trivial >/dev/null 2>&1   # create the state directory and schema once

cmds=("$ar run trivial" "/usr/bin/python3 $src/bench/baseline_trivial.py $tmp/py"
      "/usr/bin/python3 -c pass")
names=("autorun run trivial" "python3 script (same job)" "python3 -c pass")
if command -v node >/dev/null; then
    cmds+=("node -e 'console.log(JSON.stringify({ok:true}))'")
    names+=("node -e (print only)")
fi
echo "== cold start: median of 200 runs each (hyperfine)"
hyperfine -N --warmup 10 --runs 200 --export-json "$tmp/cold.json" "${cmds[@]}" >/dev/null 2>&1
/usr/bin/python3 - "$tmp/cold.json" "${names[@]}" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
print(f"{'command':32} {'median ms':>10} {'mean ms':>10}")
for name, r in zip(sys.argv[2:], res):
    print(f"{name:32} {r['median']*1000:10.2f} {r['mean']*1000:10.2f}")
PY

echo "== throughput: 100,000 trivial runs in one process, history recorded"
"$build/bench/bench_runs" throughput 100000
echo "== memory: 10,000 runs suspended at once (sleep 2 s each)"
"$build/bench/bench_runs" suspended 10000
