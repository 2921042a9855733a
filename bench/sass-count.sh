#!/usr/bin/env bash
# SASS instructions and registers of the quantizers' kernels for sm_90, on a machine without a GPU: GpuBench's `ptx`
# command compiles their PTX on the CPU, and ptxas 11.8 assembles it (taken from Debian's nvidia-cuda-toolkit, in its
# non-free component, unpacked once into a cache without installing it or its dependencies). For comparing a kernel
# change's instruction count and register use before spending GPU time on it:
#   bash bench/sass-count.sh [OUT_DIR]          one line per kernel; OUT_DIR keeps the .ptx, .cubin and .sass files
# The static count includes every path of a kernel (the rare element-by-element ones too); Nsight Compute's
# instructions executed (BENCHMARKS.md) is the dynamic measure. cuobjdump 11.8 prints a few sm_90 instructions (VIMNMX,
# the integer min/max) as bare encodings, without an address or a name: SASS counts the named ones, "all" every
# encoded instruction (two encoding words each).
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
cache=${TETRAJET_CUDA_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/tetrajet/cuda-11.8}
if [ ! -x "$cache/usr/bin/ptxas" ]; then
  sources=/etc/apt/sources.list.d/debian.sources
  [ -f "$sources" ] || { echo "needs Debian's apt sources ($sources) to fetch nvidia-cuda-toolkit"; exit 1; }
  echo "unpacking ptxas and cuobjdump from Debian's nvidia-cuda-toolkit into $cache (once, about 85 MB)"
  apt=$(mktemp -d)
  trap 'rm -rf "$apt"' EXIT
  mkdir -p "$apt/lists/partial" "$apt/parts" "$apt/archives/partial" "$cache"
  sed 's/^Components: .*/Components: main non-free/' "$sources" > "$apt/parts/debian.sources"
  o=(-oDir::Etc::SourceList=/dev/null -oDir::Etc::SourceParts="$apt/parts" -oDir::State::Lists="$apt/lists" -oDir::Cache="$apt")
  apt-get "${o[@]}" update > /dev/null 2>&1
  (cd "$apt" && apt-get "${o[@]}" download nvidia-cuda-toolkit > /dev/null 2>&1)
  dpkg -x "$apt"/nvidia-cuda-toolkit_*.deb "$cache"
fi
out=${1:-$(mktemp -d)}
dotnet build bench/TetraJet.GpuBench -c Release -v q > /dev/null
dotnet bench/TetraJet.GpuBench/bin/Release/net10.0/TetraJet.GpuBench.dll ptx --out "$out" > /dev/null
printf '%-24s %6s %6s %5s\n' kernel SASS all regs
for p in "$out"/*.ptx; do
  k=$(basename "$p" .ptx)
  # ILGPU writes PTX ISA 8.0 headers; ptxas 11.8 reads up to 7.8, which has every instruction these kernels use.
  sed -i 's/^\.version 8\.0$/.version 7.8/' "$p"
  regs=$("$cache/usr/bin/ptxas" -arch sm_90 -O3 -v "$p" -o "$out/$k.cubin" 2>&1 | grep -o 'Used [0-9]* registers' | grep -o '[0-9]*')
  "$cache/usr/bin/cuobjdump" -sass "$out/$k.cubin" > "$out/$k.sass"
  printf '%-24s %6d %6d %5s\n' "$k" "$(grep -cE '^\s+/\*[0-9a-f]{4}\*/' "$out/$k.sass")" \
    $(($(grep -cE '/\* 0x[0-9a-f]{16} \*/' "$out/$k.sass") / 2)) "$regs"
done
