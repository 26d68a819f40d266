#!/usr/bin/env bash
# Coverage-guided fuzzing of what peers and users send us, on the stable toolchain (no
# sanitizer: RUSTC_BOOTSTRAP lets cargo-fuzz pass its flags). Each target runs RUNS inputs
# (default 10^7) starting from fuzz/seeds and the committed corpus, which it grows; crashes
# land in fuzz/artifacts. `cargo test --test fuzz_corpus` replays the corpus.
#   cargo install cargo-fuzz && bash fuzz/run.sh [RUNS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
runs=${1:-10000000}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(frame ticket catalog_entry control)
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none -O "$t" "corpus/$t" "seeds/$t" -- \
    -runs="$runs" -max_len=65536 -timeout=5 -print_final_stats=1
done
