#!/usr/bin/env python3
"""Summarises a host CPU profile of the GPU benchmark (bench/gpu-profile.sh, step 3).

Convert the EventPipe trace first (dotnet-trace is a NuGet tool: `dotnet tool install -g dotnet-trace`):
    dotnet-trace convert --format Speedscope -o host host.nettrace
    python3 bench/host-profile.py host.speedscope.json LinearGlue.Backward [CudaRunner.Load]
Prints, over the samples whose stack holds FOCUS (and not EXCLUDE: kernel compilation by default), the share of time
inside each frame, and the share whose deepest managed frame is each method (native time below it included).
"""
import collections
import json
import sys


def main(path, focus, exclude="CudaRunner.Load", top=30):
    data = json.load(open(path))
    frames = [f["name"] for f in data["shared"]["frames"]]
    inclusive, deepest = collections.Counter(), collections.Counter()
    total = 0.0
    for profile in data["profiles"]:
        stack, last = [], None
        for event in profile["events"]:
            at = event["at"]
            if last is not None and stack:
                names = [frames[f] for f in stack]
                if any(focus in n for n in names) and not any(exclude in n for n in names):
                    dt = at - last
                    total += dt
                    for n in set(names):
                        inclusive[n] += dt
                    managed = [n for n in names if "!" in n]
                    deepest[managed[-1] if managed else names[-1]] += dt
            last = at
            if event["type"] == "O":
                stack.append(event["frame"])
            else:
                while stack and stack.pop() != event["frame"]:
                    pass
    print(f"total ms {total:.0f}")
    print("--- inclusive")
    for name, ms in inclusive.most_common(int(top)):
        if ms / total < 0.999:
            print(f"{100 * ms / total:6.1f}%  {name[:170]}")
    print("--- deepest managed frame (self, native time below it included)")
    for name, ms in deepest.most_common(40):
        print(f"{100 * ms / total:6.1f}%  {name[:170]}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
