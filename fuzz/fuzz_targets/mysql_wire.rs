//! MySQL's packet layer and the messages the gateway decodes: split messages (16 MiB
//! continuations, sequence ids), the greeting, the client's handshake response, OK/ERR/EOF,
//! column definitions, COM_STMT_EXECUTE and SEND_LONG_DATA, and a command's answer followed
//! packet by packet.
#![no_main]

use bytes::BytesMut;
use gatehouse_mysql::binary::{decode_execute, decode_long_data};
use gatehouse_mysql::columns::Column;
use gatehouse_mysql::frame::split_message;
use gatehouse_mysql::handshake::{Greeting, HandshakeResponse};
use gatehouse_mysql::packets::{Err, Ok};
use gatehouse_mysql::response::{Response, Step};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    let mut answer = Response::new(u32::MAX);
    let mut types = Vec::new();
    while let std::result::Result::Ok(Some(message)) = split_message(&mut buf, 1 << 24) {
        let payload: &[u8] = &message.payload;
        let _ = Greeting::decode(payload);
        let _ = HandshakeResponse::decode(payload);
        let _ = Ok::decode(payload);
        let _ = Err::decode(payload);
        let _ = Column::decode(payload);
        let params = payload.first().map_or(0, |b| usize::from(b % 8));
        let _ = decode_execute(payload, params, &mut types, &[]);
        let _ = decode_long_data(payload);
        match answer.feed(payload) {
            std::result::Result::Ok(Step::Done(_)) | std::result::Result::Err(_) => {
                answer = Response::new(u32::MAX);
            }
            std::result::Result::Ok(_) => {}
        }
    }
});
