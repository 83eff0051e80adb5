//! One line of a watch stream, read as each of the four kinds watched (API object JSON into
//! records): never a panic; a change it makes is applied to a cluster state.
#![no_main]

use headless_dns::cluster::{ClusterEvent, ClusterState};
use headless_dns::records::ObjectKind;
use headless_dns::source::kube::{Line, read_line};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let mut state = ClusterState::new(1);
    state.apply(ClusterEvent::Synced);
    for kind in ObjectKind::ALL {
        match read_line(kind, line, "watch (fuzz)") {
            Line::Change { event, .. } => state.apply(event),
            Line::Skipped { remove: Some(event), .. } => state.apply(event),
            _ => {}
        }
    }
    state.publish();
});
