#!/usr/bin/env bash
# bench/gpu_suite.py on a GPU machine with no network access, from a copy of the repository and the folder that
# bench/offline_bundle.py made (wheels, a CIFAR-10 zip, the race's feature network):
#
#   bash bench/gpu_suite.sh BUNDLE OUT [gpu_suite.py options]      # the JSON goes to OUT, written after every part
#
# The wheels go to a temporary folder ahead of the machine's own packages on PYTHONPATH, the repository is imported
# from its copy (no install), and the output is unbuffered so that a run stopped at a time limit keeps its log.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: bash bench/gpu_suite.sh BUNDLE OUT [gpu_suite.py options]" >&2; exit 2; }
[ -d "$1/wheels" ] || { echo "gpu_suite.sh: error: $1 has no wheels/; make it with bench/offline_bundle.py" >&2; exit 2; }
bundle=$(cd "$1" && pwd); out=$2; shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
site=$(mktemp -d)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" "$bundle"/wheels/*.whl
export PYTHONPATH="$root:$site${PYTHONPATH:+:$PYTHONPATH}" FASTDIT_CACHE="$bundle/cache" PYTHONUNBUFFERED=1
mkdir -p "$out"
exec python3 "$root/bench/gpu_suite.py" --data-dir "$bundle/cifar10" --out "$out" "$@"
