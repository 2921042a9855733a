#!/usr/bin/env bash
# Packs GpuBench and the CLI together into .gpu/app, so that one call on the GPU machine can test, benchmark and train
# (bench/gpu-run.sh). ../shared/gpu/pack.sh packs one program; the CLI is published over it afterwards, so that its
# newer SkiaSharp (the plots') is the one in the folder: with GpuBench's older one, every training run stops before
# its summary. Satellite resource folders and symbols are dropped and the .NET runtime is repacked without its
# debugger and standalone-GC libraries, to keep what is copied to the GPU machine (the working tree and .gpu) small.
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
../shared/gpu/pack.sh bench/TetraJet.GpuBench/TetraJet.GpuBench.csproj
cli=$(mktemp -d)
trap 'rm -rf "$cli"' EXIT
dotnet publish samples/TetraJet.Cli -c Release -r linux-x64 --self-contained false -p:LibTorch=external -o "$cli" >/dev/null
cp -r "$cli"/. .gpu/app/
find .gpu/app -mindepth 1 -maxdepth 1 -type d -regextype posix-extended -regex '.*/[a-z]{2}(-[A-Za-z]+)?' -exec rm -rf {} +
rm -f .gpu/app/*.pdb

version=$(dotnet --list-runtimes | awk '/Microsoft.NETCore.App/{v=$2} END{print v}')
slim=${TMPDIR:-/tmp}/dotnet-runtime-slim-$version.tar.xz
if [ ! -s "$slim" ]; then
  echo "repacking the .NET runtime without debugger libraries (once; about 2 min)"
  work=$(mktemp -d)
  tar -xJf .gpu/dotnet-runtime.tar.xz -C "$work"
  rm -f "$work"/shared/Microsoft.NETCore.App/*/{libmscordaccore.so,libmscordbi.so,libclrgc.so,libclrgcexp.so,createdump,Microsoft.VisualBasic.Core.dll,Microsoft.VisualBasic.dll}
  (cd "$work" && XZ_OPT=-9e tar -cJf "$slim.tmp" dotnet host shared) && mv "$slim.tmp" "$slim"
  rm -rf "$work"
fi
cp "$slim" .gpu/dotnet-runtime.tar.xz
tracked=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
total=$((tracked + $(du -sb .gpu | cut -f1)))
echo "packed .gpu: $(du -sh .gpu | cut -f1); with the tracked files, $((total / 1048576)) MiB to copy to the GPU machine"
