//! One UDP datagram, answered by the wire writer and by hickory's parser and encoder (the
//! reference, and the path of what the writer declines): the writer's bytes, when it answers,
//! are hickory's; every reply has the query's ID, QR set, fits the client's limit, parses; a
//! response gets none.
#![no_main]

use hickory_server::net::xfer::Protocol;
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let handler = common::handler();
    let mut direct = Vec::new();
    let took = handler.answer_directly(data, Protocol::Udp, &mut direct);
    let mut general = Vec::new();
    let answered = handler.respond(data, common::src(), Protocol::Udp, &mut general);
    if took {
        assert!(answered, "the writer answered what hickory would not");
        assert_eq!(direct, general, "the writer's bytes differ from hickory's");
    }
    common::check_reply(data, answered.then_some(&general[..]), common::udp_limit(data));
});
