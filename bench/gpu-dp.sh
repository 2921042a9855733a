#!/usr/bin/env bash
# Data parallelism through the CLI on a GPU machine (docs/DISTRIBUTED.md). Run from the repository root after packing
# the CLI into .gpu/app, as bench/gpu-e2e.sh:
#   bash bench/gpu-dp.sh OUT_DIR [max_gpus]      (max_gpus: default, every GPU nvidia-smi lists)
# 1. GPT tiny-cpu, TetraJet, 30 steps: plain and --gpus 1 must log the same loss bits at every step (metrics.csv
#    writes round-trip decimals, so equal text is equal bits), given that two plain runs do (printed as a control).
# 2. With 2 or more GPUs: BF16 recipe, --gpus 2 against one process with the same --batch: losses equal up to the
#    order of summation (max |difference| printed); --gpus 2 stopped at step 10 and resumed to 20 equals the straight run;
#    resumed on 1 GPU it runs on and prints the notice.
# 3. Scaling: GPT-70m and GPT-150m, TetraJet, 32 sequences per GPU (--batch 32·N), 40 steps, tok/s = median of the
#    second half's per-step rates, on 1, 2, … max_gpus GPUs; speed-up against 1 GPU.
set -uo pipefail
out=${1:?usage: gpu-dp.sh OUT_DIR [max_gpus]}
max=${2:-$(nvidia-smi -L | wc -l)}
mkdir -p "$out"

run() {
  local name=$1; shift
  local dir=/tmp/tetrajet-dp/$name
  rm -rf "$dir"
  bash .gpu/remote.sh TetraJet.Cli.dll train "$@" --device cuda --log-every 10 --out "$dir" > "$out/$name.log" 2>&1
  echo "$name: exit $?"
  cp "$dir/metrics.csv" "$out/$name.metrics.csv" 2>/dev/null
  cp "$dir/summary.json" "$out/$name.summary.json" 2>/dev/null
}
resume() {
  local name=$1 from=$2; shift 2
  bash .gpu/remote.sh TetraJet.Cli.dll train "$@" --device cuda --log-every 10 --resume --out "/tmp/tetrajet-dp/$from" > "$out/$name.log" 2>&1
  echo "$name: exit $?"
  cp "/tmp/tetrajet-dp/$from/metrics.csv" "$out/$name.metrics.csv" 2>/dev/null
}

tiny=(gpt --size tiny-cpu --recipe tetrajet --steps 30 --batch 16 --eval-every 1000000 --checkpoint-every 1000000)
run tiny-plain "${tiny[@]}"
run tiny-plain-again "${tiny[@]}"
run tiny-gpus1 "${tiny[@]}" --gpus 1
if (( max >= 2 )); then
  bf=(gpt --size tiny-cpu --recipe bf16 --steps 20 --batch 16 --eval-every 1000000 --checkpoint-every 10)
  run bf16-plain "${bf[@]}"
  run bf16-gpus2 "${bf[@]}" --gpus 2
  run bf16-gpus2-split "${bf[@]}" --gpus 2 --stop-after 10
  resume bf16-gpus2-resumed bf16-gpus2-split "${bf[@]}" --gpus 2
  run bf16-gpus2-split1 "${bf[@]}" --gpus 2 --stop-after 10
  resume bf16-gpus2-resumed1 bf16-gpus2-split1 "${bf[@]}"
fi
for size in 70m 150m; do
  for (( n = 1; n <= max; n *= 2 )); do
    run "gpt-$size-x$n" gpt --size "$size" --recipe tetrajet --batch $(( 32 * n )) --steps 40 --eval-subset 65536 \
      --eval-every 1000000 --checkpoint-every 1000000 $( (( n > 1 )) && echo --gpus $n )
  done
done

python3 - "$out" "$max" <<'PY'
import csv, json, os, statistics, sys
out, top = sys.argv[1], int(sys.argv[2])
def rows(name):
    try:
        with open(os.path.join(out, name + ".metrics.csv")) as f:
            return list(csv.DictReader(f))
    except OSError:
        return None
report = {}
def losses(r): return [x["loss"] for x in r] if r else None
a, a2, b = rows("tiny-plain"), rows("tiny-plain-again"), rows("tiny-gpus1")
repeat = a is not None and losses(a) == losses(a2)
same = a is not None and b is not None and len(a) == 30 and losses(a) == losses(b)
report["plain_repeats_bit_exact"] = repeat
report["gpus1_equals_plain"] = same
print(f"plain run repeated, 30 steps, loss bits equal: {repeat} (if not, torch's kernels are not repeatable here and the next line cannot pass)")
print(f"--gpus 1 = plain, 30 steps, loss bits: {'PASS' if same else 'FAIL'}")
if top >= 2:
    p, g = rows("bf16-plain"), rows("bf16-gpus2")
    if p and g and len(p) == len(g):
        diff = max(abs(float(x["loss"]) - float(y["loss"])) for x, y in zip(p, g))
        report["gpus2_vs_plain_max_loss_diff"] = diff
        print(f"--gpus 2 vs one process, same --batch, BF16: max |loss difference| {diff:.3g} over {len(p)} steps")
    r = rows("bf16-gpus2-resumed")
    ok = g is not None and r is not None and [x["loss"] for x in g] == [x["loss"] for x in r]
    report["gpus2_resume_bit_exact"] = ok
    print(f"--gpus 2 stopped at 10 and resumed = straight run: {'PASS' if ok else 'FAIL'}")
    with open(os.path.join(out, "bf16-gpus2-resumed1.log")) as f:
        noted = "trained on 2 GPU(s) and continues on 1" in f.read()
    r1 = rows("bf16-gpus2-resumed1")
    report["resume_on_1_gpu"] = bool(noted and r1 and len(r1) == 20)
    print(f"--gpus 2 checkpoint resumed on 1 GPU, notice printed and run finished: {'PASS' if report['resume_on_1_gpu'] else 'FAIL'}")
scaling = []
for size in ("70m", "150m"):
    base = None
    n = 1
    while n <= top:
        m = rows(f"gpt-{size}-x{n}")
        if m:
            rates = [float(r["items_per_s"]) for r in m[len(m) // 2:] if r["items_per_s"]]
            rate = statistics.median(rates)
            base = base or (rate if n == 1 else None)
            speedup = rate / base if base else float("nan")
            scaling.append(dict(model=f"gpt-{size}", gpus=n, batch=32 * n, tok_per_s=rate, speedup=speedup))
            print(f"gpt-{size} on {n} GPU(s), batch {32 * n}: {rate:,.0f} tok/s, {speedup:.2f}x one GPU")
        n *= 2
report["scaling"] = scaling
with open(os.path.join(out, "dp.json"), "w") as f:
    json.dump(report, f, indent=2)
PY
