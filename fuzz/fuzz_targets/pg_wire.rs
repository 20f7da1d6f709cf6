//! PostgreSQL's framing and every message the gateway decodes from a client or a server:
//! startup packets, frames, Parse/Bind/Execute/Query/FunctionCall, DataRow, notices,
//! RowDescription, and each Bind parameter rendered for the audit trail.
#![no_main]

use bytes::BytesMut;
use gatehouse_postgres::frame::{split_frame, split_startup};
use gatehouse_postgres::masking::decode_row_description;
use gatehouse_postgres::messages::{
    decode_execute, decode_query, decode_target, Bind, DataRow, FunctionCall, Parse, ServerNotice,
};
use gatehouse_postgres::params::render;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut startup = BytesMut::from(data);
    let _ = split_startup(&mut startup);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = split_frame(&mut buf, 1 << 20) {
        let body = frame.body();
        match frame.tag() {
            b'P' => {
                let _ = Parse::decode(body);
            }
            b'B' => {
                if let Ok(bind) = Bind::decode(body) {
                    for (i, value) in bind.values.iter().enumerate() {
                        let _ = render(*value, bind.format_of(i), 25);
                        let _ = render(*value, bind.format_of(i), 23);
                        let _ = render(*value, 1, 1700);
                        let _ = render(*value, 1, 1114);
                    }
                }
            }
            b'E' => {
                let _ = decode_execute(body);
            }
            b'Q' => {
                let _ = decode_query(body);
            }
            b'C' | b'D' => {
                let _ = decode_target(body);
                if let Ok(row) = DataRow::decode(body) {
                    for value in row {
                        if value.is_err() {
                            break;
                        }
                    }
                }
            }
            b'F' => {
                let _ = FunctionCall::decode(body);
            }
            b'N' => {
                let _ = ServerNotice::decode(body);
            }
            b'T' => {
                let _ = decode_row_description(body);
            }
            _ => {}
        }
    }
});
