#!/usr/bin/env bash
# Packs TetraJet.Generators and TetraJet.Runtime into artifacts/packages, then builds and runs this project
# against the packages, as an outside user would. Exits nonzero if any step fails or the output is wrong.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
version="${TETRAJET_PACKAGE_VERSION:-0.1.0-dev}"
packages="$root/artifacts/packages"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

echo "== packing TetraJet.Generators and TetraJet.Runtime $version into artifacts/packages"
mkdir -p "$packages"
dotnet pack "$root/TetraJet.Generators" -c Release -o "$packages" -p:PackageVersion="$version" --nologo -v quiet
dotnet pack "$root/TetraJet.Runtime" -c Release -o "$packages" -p:PackageVersion="$version" --nologo -v quiet

# The version does not change between builds, so drop the copies NuGet extracted last time.
cache="${NUGET_PACKAGES:-$HOME/.nuget/packages}"
rm -rf "$cache/tetrajet.runtime/$version" "$cache/tetrajet.generators/$version" "$here/obj" "$here/bin"

echo "== building and running samples/PackageConsumer against the packages"
output="$(dotnet run --project "$here" -c Release -p:TetraJetVersion="$version" 2>&1)" || { echo "$output"; echo "PackageConsumer: run failed"; exit 1; }
echo "$output"
if ! grep -q "^output shape: \[4, 10\]$" <<<"$output"; then
  echo "PackageConsumer: expected 'output shape: [4, 10]'"
  exit 1
fi
echo "PackageConsumer: OK"
