//! PostgreSQL's framing and every message the gateway decodes from a client or a server:
//! startup packets, frames, Parse/Bind/Execute/Query/FunctionCall, DataRow, notices,
//! RowDescription, and each Bind parameter rendered for the audit trail.
#![no_main]

use bytes::BytesMut;
use gatehouse_postgres::encoding::ClientEncoding;
use gatehouse_postgres::frame::{split_frame, split_startup};
use gatehouse_postgres::masking::decode_row_description;
use gatehouse_postgres::messages::{
    decode_execute, decode_query, decode_target, Bind, DataRow, FunctionCall, Parse, ServerNotice,
};
use gatehouse_postgres::params::render;
use libfuzzer_sys::fuzz_target;

/// Client encodings the texts are decoded in, one chosen per input.
const ENCODINGS: [&str; 7] = ["UTF8", "LATIN1", "LATIN9", "WIN1251", "EUC_JP", "EUC_CN", "EUC_TW"];

fuzz_target!(|data: &[u8]| {
    let name = ENCODINGS.get(data.len() % ENCODINGS.len()).copied();
    let enc = ClientEncoding::from_name(name.unwrap_or("UTF8"));
    let mut startup = BytesMut::from(data);
    let _ = split_startup(&mut startup);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = split_frame(&mut buf, 1 << 20) {
        let body = frame.body();
        match frame.tag() {
            b'P' => {
                let _ = Parse::decode(body, enc);
            }
            b'B' => {
                if let Ok(bind) = Bind::decode(body, enc) {
                    for (i, value) in bind.values.iter().enumerate() {
                        let _ = render(*value, bind.format_of(i), 25, enc);
                        let _ = render(*value, bind.format_of(i), 23, enc);
                        let _ = render(*value, 1, 1700, enc);
                        let _ = render(*value, 1, 1114, enc);
                    }
                }
            }
            b'E' => {
                let _ = decode_execute(body, enc);
            }
            b'Q' => {
                let _ = decode_query(body, enc);
            }
            b'C' | b'D' => {
                let _ = decode_target(body, enc);
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
                let _ = ServerNotice::decode(body, enc);
            }
            b'T' => {
                let _ = decode_row_description(body, enc);
            }
            _ => {}
        }
    }
});
