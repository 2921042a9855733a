#!/usr/bin/env bash
# End-to-end training throughput on CUDA, one process per run (so each run's peak device memory is its own):
# GPT-70m and ViT-small (DeiT-S) with each recipe at the trainer's defaults (TetraJet also with --gemm fp8), bfloat16 autocast (--precision's CUDA
# default). Throughput is summary.json's SteadyThroughput: items over the second half of the steps divided by those
# steps' own time (the first steps compile the kernels; metrics.csv's items_per_s is a 5-second window, too coarse for
# short runs). The gradient-noise diagnostic is off (--noise-every 0): it samples only the quantized runs, so it would
# charge them a second weight gradient on its steps that the BF16 run does not pay. Run on the GPU machine from the
# repository root after bench/gpu-pack.sh (or after packing the CLI alone into .gpu/app):
#   bash bench/gpu-e2e.sh OUT_DIR [steps] [extra train options...]
# RUNS="gpt-70m-bf16 gpt-70m-tetrajet-v2" limits it to the runs named (model-recipe, as the summary prints them);
# REMOTE names another package's remote.sh (bench/gpu-run.sh's e2e-base: an earlier build's assemblies).
set -uo pipefail
out=${1:?usage: gpu-e2e.sh OUT_DIR [steps] [extra train options]}
steps=${2:-40}
shift $(( $# >= 2 ? 2 : 1 ))
mkdir -p "$out"

run() {
  local name=$1; shift
  [ -z "${RUNS:-}" ] || [[ " $RUNS " == *" $name "* ]] || return 0
  local dir=/tmp/tetrajet-e2e/$name
  rm -rf "$dir"
  bash "${REMOTE:-.gpu/remote.sh}" TetraJet.Cli.dll train "$@" --device cuda --steps "$steps" --eval-every 1000000 \
    --checkpoint-every 1000000 --noise-every 0 --log-every 10 --out "$dir" > "$out/$name.log" 2>&1
  echo "$name: exit $?"
  cp "$dir/summary.json" "$out/$name.summary.json" 2>/dev/null
  cp "$dir/metrics.csv" "$out/$name.metrics.csv" 2>/dev/null
}

for r in bf16 tetrajet tetrajet-v2; do run "gpt-70m-$r" gpt --size 70m --recipe "$r" --eval-subset 65536 "$@"; done
run gpt-70m-tetrajet-fp8 gpt --size 70m --recipe tetrajet --gemm fp8 --eval-subset 65536 "$@"
for r in bf16 tetrajet tetrajet-v2; do run "vit-small-$r" vit --size small --recipe "$r" --eval-subset 1000 "$@"; done
run vit-small-tetrajet-fp8 vit --size small --recipe tetrajet --gemm fp8 --eval-subset 1000 "$@"

python3 - "$out" <<'PY'
import csv, json, os, statistics, sys
out = sys.argv[1]
named = os.environ.get("RUNS", "").split()
rows = []
for model in ("gpt-70m", "vit-small"):
    base = None
    for recipe in ("bf16", "tetrajet", "tetrajet-fp8", "tetrajet-v2"):
        name = f"{model}-{recipe}"
        if named and name not in named:
            continue
        try:
            with open(os.path.join(out, name + ".metrics.csv")) as f:
                steps = [r for r in csv.DictReader(f) if r.get("items_per_s")]
            with open(os.path.join(out, name + ".summary.json")) as f:
                summary = json.load(f)
        except OSError as e:
            print(f"{name}: no result ({e})")
            continue
        rate = summary.get("SteadyThroughput") or statistics.median(float(r["items_per_s"]) for r in steps[len(steps) // 2:])
        base = base or (rate if recipe == "bf16" else None)
        ratio = rate / base if base else float("nan")
        rows.append(dict(run=name, unit=summary.get("ThroughputUnit"), steady_per_s=rate, ratio_to_bf16=ratio,
                         peak_device_memory_gib=summary.get("PeakDeviceMemoryGiB"), precision=summary.get("Precision"),
                         final_eval_loss=summary.get("EvalLoss"), fp8_fallbacks=summary.get("Fp8Fallbacks")))
        print(f"{name:24} {rate:12,.0f} {summary.get('ThroughputUnit')}  {ratio:5.2f}x bf16  peak {summary.get('PeakDeviceMemoryGiB')} GiB")
with open(os.path.join(out, "e2e.json"), "w") as f:
    json.dump(rows, f, indent=2)
PY
