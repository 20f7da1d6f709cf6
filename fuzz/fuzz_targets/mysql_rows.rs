//! MySQL result masking on hostile server bytes: column definitions planned with the rules,
//! then text and binary rows rewritten.
#![no_main]

use gatehouse_core::mask::MaskCounts;
use gatehouse_mysql::binary::mask_binary_row;
use gatehouse_mysql::codec::Reader;
use gatehouse_mysql::columns::{mask_text_row, plan, Column};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let masker = gatehouse_fuzz::masker();
    // Up to four length-prefixed column definitions, then the row.
    let mut r = Reader::new(data);
    let mut columns = Vec::new();
    for _ in 0..4 {
        match r.lenenc_bytes() {
            Ok(Some(def)) => {
                if let Ok(column) = Column::decode(def) {
                    columns.push(column);
                }
            }
            _ => break,
        }
    }
    let row = r.rest();
    let plan = plan(masker, &columns);
    let mut counts = MaskCounts::new();
    let _ = mask_text_row(&plan, row, &mut counts);
    let _ = mask_binary_row(&plan, &columns, row, &mut counts);
});
