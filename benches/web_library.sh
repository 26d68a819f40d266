#!/usr/bin/env bash
# The web face over N tracks (default 100,000): search3 latency and the web player's library
# page load, against one `meff up` process holding a library of tiny tagged WAVs
# (benches/gen_library.py) imported with `meff import`.
#   bash benches/web_library.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-100000}"
bash scripts/deps.sh
cargo build --release --quiet
MEFF="$PWD/target/release/meff"
WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/meff-weblib.XXXXXX")"
peer=""
cleanup() { [ -n "$peer" ] && kill "$peer" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
python3 benches/gen_library.py "$WORK/files" "$N"
"$MEFF" up --name lib --port 0 --replicas 1 --http 127.0.0.1:0 --data-dir "$WORK/peer" >"$WORK/peer.out" 2>&1 &
peer=$!
for _ in $(seq 1 100); do grep -q '^web:' "$WORK/peer.out" && break; sleep 0.1; done
url=$(sed -n 's/^web: //p' "$WORK/peer.out")
port=$(echo "$url" | sed -n 's|http://127.0.0.1:\([0-9]*\)/.*|\1|p')
export MEFF_DATA_DIR="$WORK/peer"
"$MEFF" import "$WORK/files" | tail -1
echo pw | "$MEFF" password >/dev/null
target/web-test-venv/bin/python benches/web_library.py "$port" lib pw "$url"
