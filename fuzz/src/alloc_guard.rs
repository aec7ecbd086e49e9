//! A global allocator that aborts on any single allocation over [MAX_ALLOCATION_BYTES].
//!
//! Why: libFuzzer's `-malloc_limit_mb` only works through a sanitizer's allocator hooks, so with
//! `--sanitizer none` a decoder that trusts a length field and reserves gigabytes would go
//! unnoticed until its pages are touched (and `-rss_limit_mb` may never see it). Aborting makes
//! libFuzzer report a crash and save the input, with the size on stderr. No input of these
//! decoders (at most 64 KiB) justifies an allocation anywhere near the limit.

#![allow(unsafe_code)] // Implementing `GlobalAlloc` is unsafe by definition.

use std::alloc::{GlobalAlloc, Layout, System};

/// Largest single allocation a fuzzed decoder may make.
pub const MAX_ALLOCATION_BYTES: usize = 64 * 1024 * 1024;

/// The system allocator, refusing (by aborting) allocations over [MAX_ALLOCATION_BYTES].
pub struct AllocGuard;

impl AllocGuard {
    fn check(size: usize) {
        if size > MAX_ALLOCATION_BYTES {
            // An allocator must not unwind, so abort; formatting a number does not allocate.
            eprintln!(
                "alloc_guard: allocation of {} bytes is over the fuzzing limit of {} bytes",
                size, MAX_ALLOCATION_BYTES
            );
            std::process::abort();
        }
    }
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds `GlobalAlloc`'s contract;
// the guard only adds a size check before allocating.
unsafe impl GlobalAlloc for AllocGuard {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::check(layout.size());
        // SAFETY: the caller upholds `alloc`'s contract for `layout`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::check(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (every allocation goes there).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::check(new_size);
        // SAFETY: the caller upholds `realloc`'s contract; `ptr` came from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GUARD: AllocGuard = AllocGuard;
