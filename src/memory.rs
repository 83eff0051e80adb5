//! Handing memory freed by a bulk change back to the system.
//!
//! The binary allocates with mimalloc, which keeps freed pages for reuse and returns them lazily,
//! from the thread that owns them. After loading or re-listing 100k objects, the parser's
//! temporaries leave tens of megabytes free but resident; collecting at that point returns them.
//! Under another global allocator (tests, benches) this only tidies mimalloc's unused heap.

/// Returns the memory freed so far by this thread, and by threads that have exited, to the system.
pub(crate) fn release_freed() {
    // SAFETY: mi_collect has no preconditions; it may be called from any thread at any time.
    unsafe { libmimalloc_sys::mi_collect(true) }
}
