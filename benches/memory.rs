//! Live heap bytes of the cluster state and view for a manifests file, counted by a wrapping
//! allocator (RSS adds the allocator's own overhead and the runtime). Prints figures; not a test.
//!
//!     python3 benches/gen_cluster.py /tmp/c 10000 10 && cargo bench --bench memory -- /tmp/c/manifests.yaml

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use headless_dns::manifests::{self, Input};
use headless_dns::{ClusterEvent, ClusterObject, ClusterState};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; it only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn megabytes() -> f64 {
    LIVE.load(Ordering::Relaxed) as f64 / 1e6
}

fn main() {
    let Some(path) = std::env::args().skip(1).find(|a| !a.starts_with('-')) else {
        eprintln!("usage: cargo bench --bench memory -- MANIFESTS");
        return;
    };
    let objects = manifests::load(&Input::File(path.clone().into()), u64::MAX)
        .expect("loads")
        .objects;
    let pods = objects
        .iter()
        .filter(|o| matches!(o, ClusterObject::Pod { .. }))
        .count();
    let services = objects
        .iter()
        .filter(|o| matches!(o, ClusterObject::Service(_)))
        .count();
    let parsed = megabytes();
    let mut state = ClusterState::new(1);
    state.apply(manifests::resync(objects));
    state.apply(ClusterEvent::Synced);
    let view = state.publish().expect("publishes");
    let live = megabytes();
    println!(
        "{path}: {pods} pods, {services} services: parsed records {parsed:.1} MB; \
         cluster state + view {live:.1} MB ({:.0} bytes per pod)",
        live * 1e6 / pods.max(1) as f64
    );
    // The view shares names with the state: what stays once the state is gone is its own part.
    drop(state);
    println!("  of which the view alone: {:.1} MB", megabytes());
    drop(view);
}
