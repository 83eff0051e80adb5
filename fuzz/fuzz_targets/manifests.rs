//! A manifests file (YAML or JSON, as the first character decides): parsed without panicking,
//! and what parses is applied to a cluster state and published.
#![no_main]

use headless_dns::manifests;
use headless_dns::{ClusterEvent, ClusterState};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(objects) = manifests::parse(text) {
        let mut state = ClusterState::new(1);
        state.apply(manifests::resync(objects));
        state.apply(ClusterEvent::Synced);
        assert!(state.publish().is_some());
    }
});
