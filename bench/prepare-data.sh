#!/usr/bin/env bash
# Builds the study's data (docs/RESULTS.md, "The multi-seed study") into bench/data/, which git ignores and which
# travels to the GPU machine with the work tree (about 30 MB):
#   bench/data/english.txt.gz    the King James Bible (data/kjv, from Debian's bible-kjv) followed by the
#                                Collaborative International Dictionary of English (Debian's dict-gcide: Webster's
#                                1913 and additions, public domain / GPL text), entries as plain paragraphs
#   bench/data/fashion-mnist/    the full Fashion-MNIST (60,000 training images), from Debian's dataset-fashion-mnist
# Installs dict-gcide and dataset-fashion-mnist with apt when missing; downloads nothing else.
# Usage: bench/prepare-data.sh [--force]   (--force rebuilds files that exist)
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/data
force=${1:-}
mkdir -p "$out/fashion-mnist"

need=()
[ -f /usr/share/dictd/gcide.dict.dz ] || need+=(dict-gcide)
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need+=(dataset-fashion-mnist)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]} with apt"
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd=sudo
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

if [ "$force" = "--force" ] || [ ! -s "$out/english.txt.gz" ]; then
  tmp=$(mktemp)
  trap 'rm -f "$tmp"' EXIT
  zcat data/kjv/kjv.txt.gz > "$tmp"
  # GCIDE in dictd form: an entry starts at column 0 with its headword and a pronunciation between backslashes,
  # continues on indented lines, and cites its source ("[1913 Webster]"). Kept: the headword and the text, one
  # paragraph per entry; dropped: pronunciations, source lines, the database's own header entries.
  zcat /usr/share/dictd/gcide.dict.dz | awk '
    /^00-database/ { skip = 1; next }
    /^[^ \t]/ && NF > 0 { skip = 0; if (para != "") print para "\n"; para = ""; }
    skip { next }
    /^[ \t]*\[[^]]*(Webster|PJC|Century|WordNet|RHUD|Chambers)[^]]*\][ \t]*$/ { next }
    NF == 0 { next }
    {
      line = $0
      gsub(/[ \t]*\\[^\\]*\\/, "", line)   # pronunciations: \Ab*di"ca*tion\
      gsub(/^[ \t]+|[ \t]+$/, "", line)
      gsub(/[ \t]+/, " ", line)
      if (line != "") para = (para == "" ? line : para " " line)
    }
    END { if (para != "") print para }
  ' >> "$tmp"
  gzip -9 -n -c "$tmp" > "$out/english.txt.gz"
  echo "$out/english.txt.gz: $(wc -c < "$tmp") bytes of text ($(wc -w < "$tmp") words), $(wc -c < "$out/english.txt.gz") gzipped"
fi

for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
  if [ "$force" = "--force" ] || [ ! -s "$out/fashion-mnist/$f" ]; then cp /usr/share/datasets/fashion-mnist/$f "$out/fashion-mnist/$f"; fi
done
echo "$out/fashion-mnist: $(ls "$out/fashion-mnist" | wc -l) files"
