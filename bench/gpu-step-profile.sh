#!/usr/bin/env bash
# Where a training step's GPU time goes, per kind of kernel, on the GPU machine (Nsight Compute there), after packing
# the CLI into .gpu/app:
#   bash bench/gpu-step-profile.sh OUT_DIR [step]
#   bash bench/gpu-step-profile.sh OUT_DIR summary     (only the summary of the CSVs already in OUT_DIR; anywhere)
# RUNS="gpt-70m-bf16 gpt-70m-tetrajet-v2" limits it to the runs named (model-recipe, as steps.txt names them).
# Each run trains `step` steps (default 6: the kernels are compiled in the first) at the trainer's defaults and marks
# the last one with --profile-step, so that `ncu --profile-from-start off` times that step's kernels and nothing else
# (gpu__time_duration, clocks as found, kernels serialised). The sums per kind go to steps.txt and steps.json beside
# the raw CSVs. Kernel time here is GPU busy time; a step's wall time (bench/gpu-e2e.sh) can only be longer.
set -uo pipefail
out=${1:?usage: gpu-step-profile.sh OUT_DIR [step | summary]}
step=${2:-6}
mkdir -p "$out"
[ "$step" = summary ] || {
ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
[ -n "$ncu" ] || { echo "ncu not found"; exit 1; }

run() {
  local name=$1; shift
  [ -z "${RUNS:-}" ] || [[ " $RUNS " == *" $name "* ]] || return 0
  local dir=/tmp/tetrajet-step/$name
  rm -rf "$dir"
  "$ncu" --profile-from-start off --clock-control none --metrics gpu__time_duration.sum --csv --log-file "$out/$name.ncu.csv" \
    bash .gpu/remote.sh TetraJet.Cli.dll train "$@" --device cuda --steps "$step" --profile-step "$step" --eval-every 1000000 \
    --checkpoint-every 1000000 --noise-every 0 --log-every 1000000 --out "$dir" > "$out/$name.log" 2>&1
  echo "$name: exit $?"
}

# The BF16/TetraJet pairs first, so that a run cut short by a time limit still has them.
for r in bf16 tetrajet; do run "gpt-70m-$r" gpt --size 70m --recipe "$r" --eval-subset 65536; done
for r in bf16 tetrajet; do run "vit-small-$r" vit --size small --recipe "$r" --eval-subset 1000; done
run gpt-70m-tetrajet-v2 gpt --size 70m --recipe tetrajet-v2 --eval-subset 65536
run gpt-70m-tetrajet-fp8 gpt --size 70m --recipe tetrajet --gemm fp8 --eval-subset 65536
}

python3 - "$out" <<'PY'
import csv, json, os, re, sys
from collections import defaultdict
out = sys.argv[1]
scale = {"ns": 1e-6, "nsecond": 1e-6, "us": 1e-3, "usecond": 1e-3, "ms": 1.0, "msecond": 1.0, "s": 1e3, "second": 1e3}
# First match wins (attention before GEMMs: PyTorch's attention kernels are CUTLASS kernels); the quantizers are this project's ILGPU kernels (entry names of the form <Family>Kernels_<...>).
kinds = [
    ("TetraJet quantizers", r"Kernels_"),
    ("attention", r"fmha|flash|attention"),
    ("GEMMs", r"gemm|xmma|nvjet|cutlass|cublas|splitk"),
    ("softmax, loss", r"softmax|nll|cross_entropy"),
    ("reductions", r"reduce"),
    ("optimizer (foreach)", r"multi_tensor|foreach"),
    ("copies and casts, cat, indexing", r"copy|cat|index|gather|scatter|embedding"),
    ("other elementwise", r"elementwise"),
]
runs, lines = [], []
for file in sorted(f for f in os.listdir(out) if f.endswith(".ncu.csv")):
    name = file[: -len(".ncu.csv")]
    with open(os.path.join(out, file)) as f:
        rows = list(csv.DictReader(l for l in f if l.startswith('"')))
    per_kind, per_kernel, launches = defaultdict(float), defaultdict(lambda: [0.0, 0]), 0
    for r in rows:
        if r.get("Metric Name") != "gpu__time_duration.sum":
            continue
        ms = float(r["Metric Value"].replace(",", "")) * scale.get(r["Metric Unit"], 1.0)
        short = re.sub(r"\(.*", "", r["Kernel Name"])[:100]
        kind = next((k for k, pattern in kinds if re.search(pattern, short, re.I)), "other")
        per_kind[kind] += ms
        per_kernel[short][0] += ms
        per_kernel[short][1] += 1
        launches += 1
    total = sum(per_kind.values())
    largest = sorted(per_kernel.items(), key=lambda kv: -kv[1][0])
    runs.append(dict(run=name, kernel_ms=total, launches=launches, kinds=dict(per_kind),
                     kernels=[dict(name=n, ms=v[0], launches=v[1]) for n, v in largest]))
    lines.append(f"{name}: {total:.2f} ms of kernels in one step, {launches} launches")
    for kind, ms in sorted(per_kind.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {ms:9.3f} ms  {100 * ms / max(total, 1e-9):5.1f}%  {kind}")
    lines.append("  top kernels:")
    for n, (ms, count) in largest[:25]:
        lines.append(f"  {ms:9.3f} ms  {count:5d}x  {n}")
    lines.append("")
with open(os.path.join(out, "steps.txt"), "w") as f:
    f.write("\n".join(lines) + "\n")
with open(os.path.join(out, "steps.json"), "w") as f:
    json.dump(runs, f, indent=1)
names = [k for k, _ in kinds] + ["other"]
print("kind".ljust(32) + "".join(r["run"][-22:].rjust(24) for r in runs))
for k in names:
    print(k.ljust(32) + "".join(f"{r['kinds'].get(k, 0.0):24.3f}" for r in runs))
print("all kernels, ms".ljust(32) + "".join(f"{r['kernel_ms']:24.3f}" for r in runs))
PY
