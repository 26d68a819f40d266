//! Replays the committed fuzz corpora (fuzz/corpus/<target>/*, found by coverage-guided
//! fuzzing; see fuzz/README.md) through the same entry points the fuzz targets call, with an
//! allocator that fails on any single allocation past the input's limit. Fast: no fuzzing
//! here, only the inputs found.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

thread_local! {
    static LIMIT: Cell<usize> = const { Cell::new(usize::MAX) };
    static WORST: Cell<usize> = const { Cell::new(0) };
}

struct Capped;

unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let over = LIMIT.try_with(|l| layout.size() > l.get()).unwrap_or(false);
        if over {
            let _ = WORST.try_with(|w| w.set(w.get().max(layout.size())));
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static A: Capped = Capped;

#[test]
fn every_corpus_input_decodes_or_is_refused_within_its_allocation_limit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut total = 0;
    for (name, target) in meff::fuzzing::TARGETS {
        let dir = root.join(name);
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("no corpus for {name} at {}: {e}", dir.display()))
            .flatten()
            .map(|e| e.path())
            .collect();
        inputs.sort();
        assert!(inputs.len() >= 10, "{name}: only {} inputs", inputs.len());
        for path in &inputs {
            let data = std::fs::read(path).unwrap();
            WORST.with(|w| w.set(0));
            LIMIT.with(|l| l.set(meff::fuzzing::allocation_limit(data.len())));
            target(&data);
            LIMIT.with(|l| l.set(usize::MAX));
            let worst = WORST.with(|w| w.get());
            assert_eq!(
                worst,
                0,
                "{name}: {} made a {worst}-byte allocation for {} input bytes",
                path.display(),
                data.len()
            );
        }
        total += inputs.len();
    }
    eprintln!("replayed {total} corpus inputs");
}
