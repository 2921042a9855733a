#!/usr/bin/env bash
# What bounds each kernel of a few `GpuBench profile` rows, on the GPU machine (Nsight Compute there), after packing
# GpuBench into .gpu/app:
#   bash bench/gpu-kernel-detail.sh OUT_DIR ROWS        (ROWS as `profile --rows`, e.g. 2,3,4: the reference shape)
# Every kernel of two forward+backward calls per row under ncu's SpeedOfLight, Occupancy and LaunchStats sections
# (each kernel replayed per pass, clocks as found); summarised per row and kernel in detail.txt: duration, DRAM and
# SM throughput as % of peak, achieved and theoretical occupancy, registers per thread, issue slots busy.
set -uo pipefail
out=${1:?usage: gpu-kernel-detail.sh OUT_DIR ROWS}
rows=${2:?usage: gpu-kernel-detail.sh OUT_DIR ROWS}
mkdir -p "$out"
ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
[ -n "$ncu" ] || { echo "ncu not found"; exit 1; }
"$ncu" --profile-from-start off --clock-control none --section SpeedOfLight --section Occupancy --section LaunchStats --section ComputeWorkloadAnalysis \
  --csv --page details --log-file "$out/detail.csv" \
  bash .gpu/remote.sh TetraJet.GpuBench.dll profile --ranges-only --rows "$rows" > "$out/detail-log.txt" 2>&1
echo "ncu: exit $?"
python3 - "$out" <<'PY'
import csv, os, re, sys
from collections import OrderedDict
out = sys.argv[1]
with open(os.path.join(out, "detail.csv")) as f:
    rows = list(csv.DictReader([l for l in f if l.startswith('"')]))
launches = OrderedDict()
for r in rows:
    k = launches.setdefault(r["ID"], {"name": r["Kernel Name"], "grid": r["Grid Size"], "block": r["Block Size"], "m": {}})
    k["m"][r["Metric Name"]] = (r["Metric Value"].replace(",", ""), r["Metric Unit"])
want = [("Duration", "dur"), ("DRAM Throughput", "dram%"), ("Compute (SM) Throughput", "sm%"), ("Memory Throughput", "mem%"),
        ("Achieved Occupancy", "occ%"), ("Theoretical Occupancy", "theo%"), ("Registers Per Thread", "regs"), ("Issue Slots Busy", "issue%")]
def val(k, name):
    v = k["m"].get(name)
    if v is None: return None
    x = float(v[0]) if re.match(r"^-?[\d.]+$", v[0]) else None
    if x is not None and name == "Duration":
        x *= {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1, "us": 1, "msecond": 1e3, "ms": 1e3}.get(v[1], 1)
    return x
lines, row = [], None
for k in launches.values():
    if "Marker" in k["name"]:
        row = int(re.findall(r"\d+", k["grid"])[0]); lines.append(f"row {row}"); continue
    if row is None: continue
    cells = []
    for name, short in want:
        x = val(k, name)
        cells.append(f"{short} {x:8.1f}" if x is not None else f"{short}      n/a")
    lines.append("  " + "  ".join(cells) + "  " + re.sub(r"\(.*", "", k["name"])[:80])
with open(os.path.join(out, "detail.txt"), "w") as f:
    f.write("(dur in us; dram/sm/mem: % of peak; occupancy: % of the SM's warps; regs per thread)\n" + "\n".join(lines) + "\n")
print("\n".join(lines[:200]))
PY
