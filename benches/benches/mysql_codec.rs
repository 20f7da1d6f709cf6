//! Throughput of the MySQL hot path, in bytes per second:
//!
//! - `mysql_frames`: `frame::split_message` over a read buffer of many small row packets, and
//!   over one 40 MiB message in 16 MiB continuation packets (joined, so copied once).
//! - `mysql_text_rows`: `codec::TextRow` over the small rows' payloads (what text-row masking
//!   decodes).
//! - `mysql_binary_rows`: `binary::mask_binary_row` over binary rows of a customers result:
//!   under a no-op plan (forwarded unread), under a `pan` detector plan on rows with nothing
//!   to mask (every column decoded and scanned, nothing rewritten), and on rows that each hold
//!   card numbers (rewritten).

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use gatehouse_core::mask::{MaskCounts, MaskPolicy, MaskSpec, Masker};
use gatehouse_mysql::binary::{field_type as t, mask_binary_row};
use gatehouse_mysql::codec::{put_lenenc_bytes, TextRow};
use gatehouse_mysql::columns::{plan, Column};
use gatehouse_mysql::frame::{encode_message, split_message};

const ROWS: usize = 20_000;
const MAX: usize = 64 << 20;

/// A text row like `id, name, email, amount, created_at`.
fn text_row(i: usize) -> Vec<u8> {
    let mut p = Vec::new();
    for v in [
        i.to_string(),
        format!("Customer {i}"),
        format!("customer{i}@example.com"),
        format!("{}.{:02}", i % 997, i % 100),
        "2024-05-01 12:00:00".to_owned(),
    ] {
        put_lenenc_bytes(&mut p, Some(v.as_bytes()));
    }
    p
}

/// The rows as the server sends them: one packet each, sequence ids running on.
fn row_packets() -> (BytesMut, Vec<Bytes>) {
    let mut wire = BytesMut::new();
    let mut payloads = Vec::with_capacity(ROWS);
    let mut seq = 0u8;
    for i in 0..ROWS {
        let payload = text_row(i);
        let (packet, next) = encode_message(&payload, seq);
        seq = next;
        wire.extend_from_slice(&packet);
        payloads.push(Bytes::from(payload));
    }
    (wire, payloads)
}

fn frames(c: &mut Criterion) {
    let mut group = c.benchmark_group("mysql_frames");
    let (small, _) = row_packets();
    let (large, _) = encode_message(&vec![b'x'; 40 << 20], 0);
    for (name, wire) in [("small_rows", small), ("one_40_mib_message", large)] {
        group.throughput(Throughput::Bytes(wire.len() as u64));
        group.bench_function(name, |b| {
            b.iter_batched(
                || wire.clone(),
                |mut buf| {
                    let mut n = 0usize;
                    while let Ok(Some(m)) = split_message(&mut buf, MAX) {
                        n += black_box(m.payload).len();
                    }
                    n
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

fn text_rows(c: &mut Criterion) {
    let mut group = c.benchmark_group("mysql_text_rows");
    let (_, payloads) = row_packets();
    let bytes: usize = payloads.iter().map(Bytes::len).sum();
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("decode", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for p in &payloads {
                for value in TextRow::new(p).flatten().flatten() {
                    n += value.len();
                }
            }
            n
        })
    });
    group.finish();
}

fn column(name: &str, type_code: u8) -> Column {
    Column {
        schema: "shop".into(),
        table: "customers".into(),
        name: name.into(),
        type_code,
        flags: 0,
    }
}

fn lenenc(out: &mut Vec<u8>, v: &[u8]) {
    put_lenenc_bytes(out, Some(v));
}

/// A binary row of `id INT, name VARCHAR, email VARCHAR, card VARCHAR, card_big BIGINT,
/// amount DECIMAL, created DATETIME, score DOUBLE, note BLOB (NULL)`.
fn binary_row(i: usize, pan: bool) -> Vec<u8> {
    let mut p = vec![0x00, 0, 0];
    p[2] |= 1 << ((8 + 2) % 8); // note is NULL
    p.extend((i as i32).to_le_bytes());
    let card: &[u8] = if pan {
        b"4111 1111 1111 1111"
    } else {
        b"tok_8f3a9c2e71b4"
    };
    lenenc(&mut p, format!("Customer {i}").as_bytes());
    lenenc(&mut p, format!("customer{i}@example.com").as_bytes());
    lenenc(&mut p, card);
    let big: u64 = if pan { 4111111111111111 } else { i as u64 };
    p.extend(big.to_le_bytes());
    lenenc(&mut p, format!("{}.{:02}", i % 997, i % 100).as_bytes());
    p.extend([7, 0xE8, 0x07, 5, 1, 12, 0, 0]);
    p.extend((i as f64 * 0.5).to_le_bytes());
    p
}

fn masker(specs: Vec<MaskSpec>) -> Masker {
    match MaskPolicy::new(specs, b"bench key: 32 bytes of secret!!!".to_vec()) {
        Ok(policy) => policy.for_groups(&[]),
        Err(e) => {
            eprintln!("bench mask spec refused: {e}");
            std::process::exit(2)
        }
    }
}

fn binary_rows(c: &mut Criterion) {
    let mut group = c.benchmark_group("mysql_binary_rows");
    let columns = [
        column("id", t::LONG),
        column("name", t::VAR_STRING),
        column("email", t::VAR_STRING),
        column("card", t::VAR_STRING),
        column("card_big", t::LONGLONG),
        column("amount", t::NEWDECIMAL),
        column("created", t::DATETIME),
        column("score", t::DOUBLE),
        column("note", t::BLOB),
    ];
    let pan = masker(vec![MaskSpec {
        name: "pan".into(),
        detect: Some("pan".into()),
        regex: None,
        columns: Vec::new(),
        style: "keep-last-4".into(),
        exempt_groups: Vec::new(),
    }]);
    let pan_plan = plan(&pan, &columns);
    let noop_plan = plan(&masker(Vec::new()), &columns);
    let clean: Vec<Vec<u8>> = (0..ROWS).map(|i| binary_row(i, false)).collect();
    let cards: Vec<Vec<u8>> = (0..ROWS).map(|i| binary_row(i, true)).collect();
    // The rows must decode, and only the card rows change, or the figures mean nothing.
    let mut counts = MaskCounts::new();
    let clean_kept = matches!(
        mask_binary_row(&pan_plan, &columns, &clean[1], &mut counts),
        Ok(None)
    );
    let cards_masked = matches!(
        mask_binary_row(&pan_plan, &columns, &cards[1], &mut counts),
        Ok(Some(_))
    );
    if !clean_kept || !cards_masked {
        eprintln!("bench rows are not what the bench means to measure");
        std::process::exit(2)
    }
    for (name, plan, rows) in [
        ("noop_plan", &noop_plan, &clean),
        ("pan_plan_untouched_rows", &pan_plan, &clean),
        ("pan_plan_masked_rows", &pan_plan, &cards),
    ] {
        let bytes: usize = rows.iter().map(Vec::len).sum();
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(name, |b| {
            let mut counts = MaskCounts::new();
            b.iter(|| {
                let mut rewritten = 0usize;
                for row in rows {
                    if let Ok(Some(out)) = mask_binary_row(plan, &columns, row, &mut counts) {
                        rewritten += black_box(out).len();
                    }
                }
                rewritten
            })
        });
    }
    group.finish();
}

criterion_group!(benches, frames, text_rows, binary_rows);
criterion_main!(benches);
