//! SFTP on hostile bytes both ways: packets framed from arbitrary chunks, requests and
//! answers parsed, and the tracker of request ids and handles driven by them (one operation
//! per request, answers matched or refused, never a panic).
#![no_main]

use gatehouse_ssh::sftp::{Framer, Request, Response, Tracker};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut framer = Framer::new();
    let mut tracker = Tracker::new();
    // Fed in chunks whose sizes come from the data, as channel messages would split it.
    let mut rest = data;
    while !rest.is_empty() {
        let n = usize::from(rest[0] % 64) + 1;
        let (chunk, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        framer.push(chunk);
        loop {
            match framer.next_packet() {
                Ok(Some(packet)) => {
                    if let Ok(request) = Request::parse(&packet) {
                        let _ = tracker.on_request(&request);
                    } else if let Ok(response) = Response::parse(&packet) {
                        let _ = tracker.on_response(&response);
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
