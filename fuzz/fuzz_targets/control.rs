//! Fuzz target: `meff::fuzzing::control`, with an allocator that fails the run on any single
//! allocation past the input's limit (libFuzzer's own malloc limit needs a sanitizer).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Capped;
static LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);

unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > LIMIT.load(Ordering::Relaxed) {
            // A panic inside the allocator would itself allocate: abort, which libFuzzer
            // reports as a crash with this input.
            std::process::abort();
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static A: Capped = Capped;

fuzz_target!(|data: &[u8]| {
    LIMIT.store(meff::fuzzing::allocation_limit(data.len()), Ordering::Relaxed);
    meff::fuzzing::control(data);
    LIMIT.store(usize::MAX, Ordering::Relaxed);
});
