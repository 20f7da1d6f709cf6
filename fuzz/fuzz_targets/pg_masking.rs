//! PostgreSQL result masking on hostile server bytes: a RowDescription planned with column
//! and detector rules, then DataRow, ErrorResponse, CopyData rewritten. Masking must never
//! panic, and what it rewrites must still decode as the message it replaced.
#![no_main]

use gatehouse_core::mask::MaskCounts;
use gatehouse_postgres::encoding::ClientEncoding;
use gatehouse_postgres::masking::{
    decode_row_description, mask_copy_data, mask_data_row, mask_notice, plan,
};
use gatehouse_postgres::messages::DataRow;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let masker = gatehouse_fuzz::masker();
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let (description, rest) = data.split_at(split);
    let mut counts = MaskCounts::new();
    if let Ok(fields) = decode_row_description(description, ClientEncoding::from_name("LATIN9")) {
        let plan = plan(masker, None, &fields);
        if let Ok(Some(rewritten)) = mask_data_row(&plan, rest, &mut counts) {
            // The rewritten row is a whole DataRow frame: its body decodes again.
            let body = rewritten.get(5..).unwrap_or_default();
            let decoded = DataRow::decode(body).map(|row| row.count());
            assert!(decoded.is_ok(), "a masked DataRow does not decode");
        }
    }
    let _ = mask_notice(masker, b'E', rest, &mut counts);
    let _ = mask_copy_data(masker, rest, &mut counts);
});
