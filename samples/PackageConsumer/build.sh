#!/usr/bin/env bash
# Packs TetraJet.Generators, TetraJet.Runtime and the tool TetraJet.Cli into artifacts/packages, checks what the
# packages declare, builds and runs this project against them, and installs and runs the tool, as an outside user
# would. Exits nonzero if any step fails or any output is wrong.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
version="${TETRAJET_PACKAGE_VERSION:-0.1.0-dev}"
packages="$root/artifacts/packages"
repository="https://github.com/tetrajet/TetraJet.NET"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

fail() { echo "PackageConsumer: $*"; exit 1; }

echo "== packing TetraJet.Generators, TetraJet.Runtime and TetraJet.Cli $version into artifacts/packages"
mkdir -p "$packages"
rm -f "$packages"/TetraJet.*."$version".*nupkg
dotnet pack "$root/TetraJet.Generators" -c Release -o "$packages" -p:PackageVersion="$version" --nologo -v quiet
dotnet pack "$root/TetraJet.Runtime" -c Release -o "$packages" -p:PackageVersion="$version" --nologo -v quiet
dotnet pack "$root/samples/TetraJet.Cli" -c Release -o "$packages" -p:PackageVersion="$version" --nologo -v quiet

echo "== checking the packages' metadata, readmes, symbols and Source Link"
python3 - "$packages" "$version" "$repository" <<'PY'
import re, sys, zipfile
packages, version, repository = sys.argv[1:]
def fail(msg): sys.exit(f"PackageConsumer: {msg}")
for pid in ["TetraJet.Generators", "TetraJet.Runtime", "TetraJet.Cli"]:
    with zipfile.ZipFile(f"{packages}/{pid}.{version}.nupkg") as z:
        nuspec = z.read(f"{pid}.nuspec").decode("utf-8-sig")
        for needed in ["<readme>README.md</readme>", '<license type="expression">MIT</license>', f"<projectUrl>{repository}</projectUrl>"]:
            if needed not in nuspec: fail(f"{pid}.nuspec lacks {needed}")
        if not re.search(f'<repository type="git" url="{re.escape(repository)}"[^>]* commit="[0-9a-f]{{40}}"', nuspec):
            fail(f"{pid}.nuspec has no repository URL with a commit")
        if "README.md" not in z.namelist(): fail(f"{pid} has no README.md")
        if pid == "TetraJet.Runtime" and "libtorch" in nuspec: fail("TetraJet.Runtime depends on a libtorch; the app should choose it")
        if pid == "TetraJet.Cli" and "<packageType name=\"DotnetTool\"" not in nuspec: fail("TetraJet.Cli is not a .NET tool package")
    if pid == "TetraJet.Generators": continue   # an analyzer: no library symbols to publish
    with zipfile.ZipFile(f"{packages}/{pid}.{version}.snupkg") as z:
        pdbs = [n for n in z.namelist() if n.endswith(f"{pid}.pdb")]
        if not pdbs: fail(f"{pid}.snupkg holds no {pid}.pdb")
        pdb = z.read(pdbs[0])
        if not re.search(rb"https://raw\.githubusercontent\.com/tetrajet/TetraJet\.NET/[0-9a-f]{40}/\*", pdb):
            fail(f"{pid}.pdb has no Source Link map to {repository}")
print("packages: readme, MIT license, repository URL and commit, symbols with Source Link; the runtime leaves libtorch to the app")
PY

# The version does not change between builds, so drop the copies NuGet extracted last time.
cache="${NUGET_PACKAGES:-$HOME/.nuget/packages}"
rm -rf "$cache/tetrajet.runtime/$version" "$cache/tetrajet.generators/$version" "$cache/tetrajet.cli/$version" "$here/obj" "$here/bin"

echo "== building and running samples/PackageConsumer against the packages"
output="$(dotnet run --project "$here" -c Release -p:TetraJetVersion="$version" 2>&1)" || { echo "$output"; fail "run failed"; }
echo "$output"
grep -q "^output shape: \[4, 10\]$" <<<"$output" || fail "expected 'output shape: [4, 10]'"
grep -q "^exported: Head.bias, Head.weight, Hidden.bias, Hidden.weight$" <<<"$output" || fail "expected the exported tensors"

echo "== installing the tool 'tetrajet' and running it outside the repository"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch" "$cache/tetrajet.cli/$version"' EXIT
dotnet tool install TetraJet.Cli --version "$version" --tool-path "$scratch/tools" --configfile "$here/nuget.config" >/dev/null \
  || fail "dotnet tool install TetraJet.Cli failed"
(
  cd "$scratch"
  tools/tetrajet --help | grep -q "export" || fail "tetrajet --help lists no export command"
  tools/tetrajet train vit --steps 2 --batch 32 --train-subset 128 --eval-subset 64 --out run --quiet >/dev/null || fail "tetrajet train failed"
  tools/tetrajet export --run run --output model.safetensors | grep -q "^exported vit tiny-cpu TetraJet at step 2" || fail "tetrajet export failed"
  tools/tetrajet compare run --out compare.png >/dev/null || fail "tetrajet compare failed"
  [ "$(head -c 8 compare.png | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "compare.png is not a PNG"
  [ "$(head -c 8 run/curves.png | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "curves.png is not a PNG"
)
echo "tool: tetrajet train, export and compare ran with the shipped data and plots"
echo "PackageConsumer: OK"
