//! A TCP connection's bytes, cut into length-prefixed messages as the TCP server reads them,
//! each answered by the wire writer and by hickory's parser and encoder: the writer's bytes,
//! when it answers, are hickory's; the query's ID, QR set, a message that parses, whole (no
//! cut); a response gets none. The client may transfer (without a key): each message of an AXFR
//! or IXFR too.
#![no_main]

use hickory_server::net::xfer::Protocol;
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let handler = common::transfer_handler();
    let mut stream = data;
    while let [hi, lo, rest @ ..] = stream {
        let length = usize::from(u16::from_be_bytes([*hi, *lo])).min(rest.len());
        let (message, next) = rest.split_at(length);
        stream = next;
        let mut reply = Vec::new();
        // As the TCP server does: a transfer the client may have streams, the rest is answered.
        if let Some(mut transfer) = handler.transfer(message, common::src()) {
            while transfer.next_message(&mut reply) {
                common::check_reply(message, Some(&reply), usize::from(u16::MAX));
            }
            continue;
        }
        let answered = handler.respond(message, common::src(), Protocol::Tcp, &mut reply);
        let mut direct = Vec::new();
        if handler.answer_directly(message, Protocol::Tcp, &mut direct) {
            assert!(answered, "the writer answered what hickory would not");
            assert_eq!(direct, reply, "the writer's bytes differ from hickory's");
        }
        common::check_reply(message, answered.then_some(&reply[..]), usize::from(u16::MAX));
    }
});
