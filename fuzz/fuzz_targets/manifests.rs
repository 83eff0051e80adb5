//! A manifests file (YAML or JSON, as the first character decides): parsed without panicking,
//! and what parses is applied to a cluster state and published. A JSON file is also taken in
//! parts as it is read (as at start and on reload): what that way accepts, each object once,
//! the whole reading accepts too, and the two states hold and serve as much.
#![no_main]

use headless_dns::manifests;
use headless_dns::{ClusterEvent, ClusterState};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let whole = std::str::from_utf8(data)
        .ok()
        .and_then(|text| manifests::parse(text).ok())
        .map(|objects| {
            let mut state = ClusterState::new(1);
            state.apply(manifests::resync(objects));
            state.apply(ClusterEvent::Synced);
            assert!(state.publish().is_some());
            state
        });
    let mut in_parts = ClusterState::new(1);
    let streamed = manifests::stream_from(data, u64::MAX, |objects| in_parts.load(objects));
    in_parts.finish_loading();
    let Ok(handed) = streamed else {
        return;
    };
    if handed != in_parts.object_count() {
        return;
    }
    let whole = whole.expect("what is taken in parts is taken whole");
    in_parts.apply(ClusterEvent::Synced);
    in_parts.publish();
    // What each holds and serves, counted (the proptests compare whole views).
    let held = |state: &ClusterState| (state.object_count(), state.view().counts());
    assert_eq!(held(&in_parts), held(&whole));
});
