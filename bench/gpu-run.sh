#!/usr/bin/env bash
# One call on the GPU machine, from the repository root after bench/gpu-pack.sh: the steps named, in order, each under
# its own time limit and all within TOTAL seconds, so that a call ends with what it measured rather than being cut
# off in the middle. Results are packed into $OUT/r.tgz after every step (a call cut short still returns the steps
# it finished) with the steps' exit codes and times in $OUT/steps.txt.
#   OUT=dir TOTAL=580 bash bench/gpu-run.sh test quantize linear e2e
# Steps: test (GpuBench test; TEST_ONLY=kernels,fp8 names groups, TEST_LIMIT, default 260 s: the full suite with its
# smoke group takes over 200 s), quantize (60 s), quantize-base (the same with the assemblies in .gpu/base, an earlier
# build's, laid over the app: a before/after pair on one machine), linear (LINEAR_LIMIT, 90 s), e2e (bench/gpu-e2e.sh with E2E_STEPS,
# default 120, and RUNS; E2E_LIMIT, 300 s), e2e-inline (the same with --overlap off: Q4/Q6 in line), e2e-base (the same
# from .gpu/base's assemblies). A step named twice writes its second run under name-2.
set -u
OUT=${OUT:?set OUT to the folder that comes back}
TOTAL=${TOTAL:-580}
start=$(date +%s)
left() { echo $((TOTAL - ($(date +%s) - start))); }
log() { echo "$*" | tee -a "$OUT/steps.txt"; }
pack() { cp "$OUT/steps.txt" "$OUT/r/" 2>/dev/null; tar -C "$OUT" -czf "$OUT/r.tgz" r; }
mkdir -p "$OUT/r"
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total --format=csv > "$OUT/r/gpu.txt" 2>&1
step() {   # name limit command...
  local name=$1 want=$2; shift 2
  local limit=$(($(left) - 8)); [ "$limit" -gt "$want" ] && limit=$want
  if [ "$limit" -lt 15 ]; then log "$name: skipped, $(left) s left"; return; fi
  local t0=$(date +%s)
  timeout "$limit" "$@" > "$OUT/r/$name.log" 2>&1
  log "$name: exit $? in $(($(date +%s) - t0)) s (limit $limit)"
  pack
}
make_base() {   # $base: the app with .gpu/base's assemblies laid over it, made once per call; inside the repository,
  # where the CLI finds the shipped data by looking above its own folder
  [ -n "${base:-}" ] && return
  base=$PWD/.gpu/base-package; rm -rf "$base"; mkdir -p "$base"; cp -r .gpu/app "$base/app"; cp .gpu/base/* "$base/app/"; cp .gpu/remote.sh "$base/"
  ln -s "$PWD/.gpu/dotnet-runtime.tar.xz" "$base/"
}
declare -A runs=()
again() { [ "${runs[$1]:-0}" -ge 2 ] && echo "$1-${runs[$1]}" || echo "$1"; }   # the folder of this run of a step
for s in "$@"; do
  runs[$s]=$(( ${runs[$s]:-0} + 1 ))
  case $s in
    test) step test "${TEST_LIMIT:-260}" bash .gpu/remote.sh TetraJet.GpuBench.dll test ${TEST_ONLY:+--only "$TEST_ONLY"} --out "$OUT/r/test.json" ;;
    quantize) step quantize 60 bash .gpu/remote.sh TetraJet.GpuBench.dll quantize --out "$OUT/r/quantize.json" ;;
    quantize-base) make_base; step quantize-base 60 bash "$base/remote.sh" TetraJet.GpuBench.dll quantize --out "$OUT/r/quantize-base.json" ;;
    linear) step linear "${LINEAR_LIMIT:-90}" bash .gpu/remote.sh TetraJet.GpuBench.dll linear --out "$OUT/r/linear.json" ;;
    e2e) step "$(again e2e)" "${E2E_LIMIT:-300}" bash bench/gpu-e2e.sh "$OUT/r/$(again e2e)" "${E2E_STEPS:-120}" ;;
    e2e-inline) step "$(again e2e-inline)" "${E2E_LIMIT:-300}" bash bench/gpu-e2e.sh "$OUT/r/$(again e2e-inline)" "${E2E_STEPS:-120}" --overlap off ;;
    e2e-base) make_base; REMOTE="$base/remote.sh" step e2e-base "${E2E_LIMIT:-300}" bash bench/gpu-e2e.sh "$OUT/r/e2e-base" "${E2E_STEPS:-120}" ;;
    *) log "$s: unknown step (test, quantize, quantize-base, linear, e2e, e2e-inline, e2e-base)" ;;
  esac
done
grep -hE '^(PASS|FAIL)' "$OUT/r/test.log" 2>/dev/null | awk '{n[$1]++} END {for (k in n) print k, n[k]}' | tee -a "$OUT/steps.txt"
grep -h '^FAIL' "$OUT/r/test.log" 2>/dev/null | head -20 >> "$OUT/steps.txt"
for f in "$OUT"/r/e2e*.log; do [ -f "$f" ] && { echo "${f##*/}:"; tail -12 "$f"; } >> "$OUT/steps.txt"; done
pack && rm -rf "$OUT/r"
