#!/usr/bin/env bash
# Where a linear's time goes, on the GPU machine (Nsight Compute there), after packing GpuBench into .gpu/app:
#   bash bench/gpu-profile.sh OUT_DIR [--no-host]
# 1. `GpuBench profile`: per shape and variant the steady time, the host's enqueue time of one call and that call's
#    time to completion; cuBLASLt's FP8 scaling modes beside the BF16 GEMM.
# 2. The same rows under `ncu --profile-from-start off` (timings skipped): two forward+backward calls per row inside a
#    profiler range, every kernel timed (gpu__time_duration, clocks left as found), then summarised per row and kernel
#    (kernels.txt, kernels.json): time per call, launches per call, and the sum beside the row's steady time.
set -uo pipefail
out=${1:?usage: gpu-profile.sh OUT_DIR [--no-host]}
mkdir -p "$out"
bash .gpu/remote.sh TetraJet.GpuBench.dll profile --out "$out" 2>&1 | tee "$out/profile-log.txt"
ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
[ -n "$ncu" ] || { echo "ncu not found: no per-kernel profile"; exit 1; }
"$ncu" --profile-from-start off --clock-control none --metrics gpu__time_duration.sum --csv --log-file "$out/ncu.csv" \
  bash .gpu/remote.sh TetraJet.GpuBench.dll profile --ranges-only > "$out/profile-ncu-log.txt" 2>&1
echo "ncu: exit $?"

python3 - "$out" <<'PY'
import csv, json, os, re, sys
from collections import OrderedDict
out = sys.argv[1]
with open(os.path.join(out, "ncu.csv")) as f:
    text = [l for l in f if l.startswith('"')]
rows = list(csv.DictReader(text))
scale = {"ns": 1e-6, "nsecond": 1e-6, "us": 1e-3, "usecond": 1e-3, "ms": 1.0, "msecond": 1.0, "s": 1e3, "second": 1e3}
with open(os.path.join(out, "profile.json")) as f:
    timed = {r["index"]: r for r in json.load(f)["profile"]["rows"]}
calls = 2
ranges, current = OrderedDict(), None
for r in rows:
    if r.get("Metric Name") != "gpu__time_duration.sum":
        continue
    name = r["Kernel Name"]
    if "Marker" in name:
        current = int(re.findall(r"\d+", r["Grid Size"])[0])
        ranges[current] = OrderedDict()
        continue
    if current is None:
        continue
    ms = float(r["Metric Value"].replace(",", "")) * scale.get(r["Metric Unit"], 1.0)
    short = re.sub(r"\(.*", "", name)[:90]
    k = ranges[current].setdefault(short, [0.0, 0])
    k[0] += ms / calls
    k[1] += 1 / calls
lines, result = [], []
for index, kernels in ranges.items():
    t = timed.get(index, {})
    total = sum(v[0] for v in kernels.values())
    head = f"row {index}: {t.get('model')} T {t.get('T')} K {t.get('K')} N {t.get('N')} {t.get('variant')}: kernels {total:.3f} ms per call"
    if t.get("steady_ms"):
        head += f", steady {t['steady_ms']:.3f} ms, host enqueue {t['host_enqueue_ms']:.3f} ms"
    lines.append(head)
    for name, (ms, count) in sorted(kernels.items(), key=lambda kv: -kv[1][0]):
        lines.append(f"  {ms:8.4f} ms  {count:4.1f}x  {name}")
    result.append(dict(index=index, timed=t, kernel_ms=total, kernels=[dict(name=n, ms=v[0], launches=v[1]) for n, v in kernels.items()]))
with open(os.path.join(out, "kernels.txt"), "w") as f:
    f.write("\n".join(lines) + "\n")
with open(os.path.join(out, "kernels.json"), "w") as f:
    json.dump(result, f, indent=1)
print("\n".join(l for l in lines if l.startswith("row")))
PY
[ "${2:-}" = "--no-host" ] && exit 0

# 3. The host's side: EventPipe's sampling profiler over a loop of calls at a shape where the GPU waits for the host
#    (host.nettrace.xz; unpack, then `dotnet-trace convert --format Speedscope` and bench/host-profile.py).
DOTNET_EnableEventPipe=1 DOTNET_EventPipeOutputPath=/tmp/host.nettrace \
  DOTNET_EventPipeConfig='Microsoft-DotNETCore-SampleProfiler:0:5,Microsoft-Windows-DotNETRuntime:4c14fccbd:5' \
  bash .gpu/remote.sh TetraJet.GpuBench.dll profile --host-loop 2>&1 | tee "$out/host-loop-log.txt"; xz -T8 -c /tmp/host.nettrace > "$out/host.nettrace.xz"
