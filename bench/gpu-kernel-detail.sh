#!/usr/bin/env bash
# What bounds each kernel, on the GPU machine (Nsight Compute there), after packing GpuBench into .gpu/app:
#   bash bench/gpu-kernel-detail.sh OUT_DIR ROWS        (ROWS as `profile --rows`, e.g. 2,3,4: the reference shape)
#   bash bench/gpu-kernel-detail.sh OUT_DIR quantize    (every quantizer of `quantize`, each run a few times)
# Every kernel under ncu's SpeedOfLight, Occupancy, LaunchStats, ComputeWorkloadAnalysis and WarpStateStats sections
# plus the main warp-stall reasons (each kernel replayed per pass, clocks as found); summarised per kernel in
# detail.txt: duration, DRAM and SM throughput as % of peak, achieved and theoretical occupancy, registers per thread,
# issue slots busy, warp cycles per issued instruction and the stall reasons' share of them.
set -uo pipefail
out=${1:?usage: gpu-kernel-detail.sh OUT_DIR ROWS|quantize}
what=${2:?usage: gpu-kernel-detail.sh OUT_DIR ROWS|quantize}
mkdir -p "$out"
ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
[ -n "$ncu" ] || { echo "ncu not found"; exit 1; }
if [ "$what" = quantize ]; then
  app=(bash .gpu/remote.sh TetraJet.GpuBench.dll quantize --iterations 1); from=()
else
  app=(bash .gpu/remote.sh TetraJet.GpuBench.dll profile --ranges-only --rows "$what"); from=(--profile-from-start off)
fi
stalls=""
for r in long_scoreboard lg_throttle math_pipe_throttle short_scoreboard mio_throttle wait not_selected barrier no_instruction dispatch_stall; do
  stalls+="${stalls:+,}smsp__average_warps_issue_stalled_${r}_per_issue_active.ratio"
done
sections=(--section SpeedOfLight --section Occupancy --section LaunchStats --section ComputeWorkloadAnalysis --section WarpStateStats)
"$ncu" "${from[@]}" --clock-control none "${sections[@]}" --metrics "$stalls" \
  --csv --page details --log-file "$out/detail.csv" "${app[@]}" > "$out/detail-log.txt" 2>&1
rc=$?
if ! grep -q '^"' "$out/detail.csv" 2>/dev/null; then
  # A metric name this ncu does not know fails the whole run: once more with the sections alone.
  echo "ncu: exit $rc without results; again without the stall metrics"
  "$ncu" "${from[@]}" --clock-control none "${sections[@]}" \
    --csv --page details --log-file "$out/detail.csv" "${app[@]}" > "$out/detail-log.txt" 2>&1
  rc=$?
fi
echo "ncu: exit $rc"
python3 - "$out" "$what" <<'PY'
import csv, os, re, sys
from collections import OrderedDict
out, what = sys.argv[1], sys.argv[2]
with open(os.path.join(out, "detail.csv")) as f:
    rows = list(csv.DictReader([l for l in f if l.startswith('"')]))
launches = OrderedDict()
for r in rows:
    k = launches.setdefault(r["ID"], {"name": r["Kernel Name"], "grid": r["Grid Size"], "block": r["Block Size"], "m": {}})
    k["m"][r["Metric Name"]] = (r["Metric Value"].replace(",", ""), r["Metric Unit"])
want = [("Duration", "dur"), ("DRAM Throughput", "dram%"), ("Compute (SM) Throughput", "sm%"), ("Memory Throughput", "mem%"),
        ("Achieved Occupancy", "occ%"), ("Theoretical Occupancy", "theo%"), ("Registers Per Thread", "regs"), ("Issue Slots Busy", "issue%"),
        ("Warp Cycles Per Issued Instruction", "cpi")]
stall = lambda n: re.match(r"smsp__average_warps_issue_stalled_(\w+)_per_issue_active\.ratio", n)
def val(k, name):
    v = k["m"].get(name)
    if v is None: return None
    x = float(v[0]) if re.match(r"^-?[\d.]+(e-?\d+)?$", v[0]) else None
    if x is not None and name == "Duration":
        x *= {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1, "us": 1, "msecond": 1e3, "ms": 1e3}.get(v[1], 1)
    return x
def line(k):
    cells = []
    for name, short in want:
        x = val(k, name)
        cells.append(f"{short} {x:7.1f}" if x is not None else f"{short}     n/a")
    st = sorted(((val(k, n) or 0, stall(n).group(1)) for n in k["m"] if stall(n)), reverse=True)
    top = " ".join(f"{s}={x:.1f}" for x, s in st[:3] if x >= 0.05)
    return "  " + "  ".join(cells) + "  " + re.sub(r"\(.*", "", k["name"])[:70] + (f"  stalls: {top}" if top else "")
lines, row = [], None
if what == "quantize":
    # The last launch of each kernel instantiation and grid (the earlier ones are warm-up), in order of first launch.
    last = OrderedDict()
    for k in launches.values(): last[(k["name"], k["grid"], k["block"])] = k
    lines = [line(k) for k in last.values()]
else:
    for k in launches.values():
        if "Marker" in k["name"]:
            row = int(re.findall(r"\d+", k["grid"])[0]); lines.append(f"row {row}"); continue
        if row is not None: lines.append(line(k))
with open(os.path.join(out, "detail.txt"), "w") as f:
    f.write("(dur in us; dram/sm/mem: % of peak; occupancy: % of the SM's warps; regs per thread; cpi: warp cycles per "
            "issued instruction; stalls: the three largest reasons, warps stalled per issue)\n" + "\n".join(lines) + "\n")
print("\n".join(lines[:300]))
PY
