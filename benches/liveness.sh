#!/usr/bin/env bash
# Failure detection under trouble, as the issue's runs ask: 16 peer processes in a network
# namespace losing 5% of every link's packets for HOLD seconds (default 120), then two peers
# whose path breaks, then one peer held to 10% of a core by a cgroup (pushing a 64 MiB track
# over and over) for HOLD seconds, then a SIGKILL. It is `tests/mesh_loss.rs` in a release
# build with longer holds; it fails on any false death. Needs root.
#   bash benches/liveness.sh [HOLD]
set -euo pipefail
cd "$(dirname "$0")/.."
MEFF_LOSS_HOLD_S="${1:-120}" cargo test --release --test mesh_loss -- --nocapture 2>&1 |
  grep -E "formed|dropped|through friends|direct again|pushed|held it back|dead for all|test result|panicked|declared"
