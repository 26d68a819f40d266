//! Shared by every fuzz target: an allocator that aborts on any single allocation past the
//! input's limit (libFuzzer's own malloc limit needs a sanitizer, which stable Rust lacks).

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

/// Runs `target` on `data` with the allocation limit for an input of its size.
pub fn run(data: &[u8], target: meff::fuzzing::Target) {
    LIMIT.store(meff::fuzzing::allocation_limit(data.len()), Ordering::Relaxed);
    target(data);
    LIMIT.store(usize::MAX, Ordering::Relaxed);
}
