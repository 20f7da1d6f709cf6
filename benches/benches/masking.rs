//! Masking throughput over DataRow-like values (what `MaskPlan::apply` sees per column), in bytes
//! per second of row values scanned.
//!
//! Rows look like a customers/payments result: id, name, e-mail, street address, phone, amount,
//! timestamp, card number (a PAN or a payment token), free-text note. Three sets: `clean` (no PAN
//! anywhere), `some_pan` (one row in ten holds a PAN) and `all_pan` (every row holds one in
//! `card_number`, every fourth row also in its note: the worst case, every row rewritten).
//!
//! - `pan`: a `detect = "pan"` rule, every column scanned.
//! - `email`: a `detect = "email"` rule, every column scanned.
//! - `column`: a `columns = ["*.card_number"]` rule; only that column is touched (the wire
//!   forwards the rest), throughput still counted over the whole row.
//! - `pan_free_text`: a 64 KiB log-like text through `Masker::mask_bytes`, the scanner alone.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gatehouse_core::mask::{
    ColumnMeta, MaskCounts, MaskPlan, MaskPolicy, MaskSpec, Masked, Masker,
};

const ROWS: usize = 2_000;
const COLUMNS: [&str; 9] = [
    "id",
    "name",
    "email",
    "address",
    "phone",
    "amount",
    "created_at",
    "card_number",
    "note",
];
/// Text-format type OIDs: int4, text, varchar, text, varchar, numeric, timestamptz, varchar, text.
const TYPES: [u32; 9] = [23, 25, 1043, 25, 1043, 1700, 1184, 1043, 25];

const FIRST: [&str; 8] = [
    "Alice", "Bob", "Carol", "Dmitri", "Eve", "Fatima", "Guo", "Hannah",
];
const LAST: [&str; 8] = [
    "Johnson", "Okafor", "Smith", "Nakamura", "Garcia", "Müller", "Kowalski", "Brown",
];
const STREETS: [&str; 6] = [
    "Elm Street",
    "Rue de Rivoli",
    "Baker St",
    "Main Ave",
    "Hauptstraße",
    "Oak Lane",
];
const CITIES: [&str; 6] = [
    "Springfield, IL 62704",
    "Paris 75001",
    "London NW1 6XE",
    "Austin, TX 78701",
    "Berlin 10115",
    "Toronto ON M5V 2T6",
];
const NOTES: [&str; 5] = [
    "",
    "called about invoice 2024-0193, resolved",
    "prefers e-mail; do not call after 18:00",
    "VIP",
    "address changed on 2024-03-12 per ticket #88213",
];
const PANS: [&str; 4] = [
    "4111111111111111",
    "5555 5555 5555 4444",
    "3782-822463-10005",
    "6011000990139424",
];

/// A deterministic pseudo-random stream (no dependency, same rows every run).
struct Lcg(u64);

impl Lcg {
    fn pick(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

/// Rows where one in `pan_every` holds a PAN (0: none).
fn rows(pan_every: usize) -> Vec<Vec<Vec<u8>>> {
    let mut rng = Lcg(42);
    (0..ROWS)
        .map(|i| {
            let first = FIRST[rng.pick(FIRST.len())];
            let last = LAST[rng.pick(LAST.len())];
            let with_pan = pan_every > 0 && i % pan_every == 0;
            let card = if with_pan {
                PANS[rng.pick(PANS.len())].to_owned()
            } else {
                format!("tok_{:016x}", rng.pick(1 << 30))
            };
            let mut note = NOTES[rng.pick(NOTES.len())].to_owned();
            if with_pan && i % (4 * pan_every) == 0 {
                note = format!(
                    "customer read card {} over the phone",
                    PANS[rng.pick(PANS.len())]
                );
            }
            vec![
                (100_000 + i).to_string(),
                format!("{first} {last}"),
                format!(
                    "{}.{}{}@example.com",
                    first.to_lowercase(),
                    last.to_lowercase(),
                    i % 97
                ),
                format!(
                    "{} {}, {}",
                    1 + rng.pick(9_999),
                    STREETS[rng.pick(STREETS.len())],
                    CITIES[rng.pick(CITIES.len())]
                ),
                format!("+1 415-555-{:04}", rng.pick(10_000)),
                format!("{}.{:02}", rng.pick(100_000), rng.pick(100)),
                format!(
                    "2024-{:02}-{:02} {:02}:{:02}:{:02}.{:06}+00",
                    1 + rng.pick(12),
                    1 + rng.pick(28),
                    rng.pick(24),
                    rng.pick(60),
                    rng.pick(60),
                    rng.pick(1_000_000)
                ),
                card,
                note,
            ]
            .into_iter()
            .map(String::into_bytes)
            .collect()
        })
        .collect()
}

fn bytes_of(rows: &[Vec<Vec<u8>>]) -> u64 {
    rows.iter().flatten().map(|v| v.len() as u64).sum()
}

fn masker(spec: MaskSpec) -> Masker {
    match MaskPolicy::new(vec![spec], b"bench key: 32 bytes of secret!!!".to_vec()) {
        Ok(policy) => policy.for_groups(&[]),
        Err(e) => {
            eprintln!("bench mask spec refused: {e}");
            std::process::exit(2)
        }
    }
}

fn plan(m: &Masker) -> MaskPlan {
    let meta: Vec<ColumnMeta<'_>> = COLUMNS
        .iter()
        .zip(TYPES)
        .map(|(name, type_oid)| ColumnMeta {
            table: Some("customers"),
            name,
            type_oid,
            binary: false,
        })
        .collect();
    m.plan(&meta)
}

/// What the relay does per row: every touched column's value through `apply`.
fn mask_rows(plan: &MaskPlan, rows: &[Vec<Vec<u8>>], counts: &mut MaskCounts) -> usize {
    let mut replaced = 0;
    for row in rows {
        for (i, value) in row.iter().enumerate() {
            if plan.touches(i) {
                match plan.apply(i, Some(value), counts) {
                    Masked::Unchanged => {}
                    Masked::Replaced(v) => replaced += black_box(v).len(),
                    Masked::Null => replaced += 1,
                }
            }
        }
    }
    replaced
}

fn spec(name: &str) -> MaskSpec {
    MaskSpec {
        name: name.to_owned(),
        detect: None,
        regex: None,
        columns: Vec::new(),
        style: "keep-last-4".to_owned(),
        exempt_groups: Vec::new(),
    }
}

fn masking(c: &mut Criterion) {
    let sets = [
        ("clean", rows(0)),
        ("some_pan", rows(10)),
        ("all_pan", rows(1)),
    ];
    let rules = [
        (
            "pan",
            MaskSpec {
                detect: Some("pan".into()),
                ..spec("pan")
            },
        ),
        (
            "email",
            MaskSpec {
                detect: Some("email".into()),
                ..spec("email")
            },
        ),
        (
            "column",
            MaskSpec {
                columns: vec!["*.card_number".into()],
                ..spec("cards")
            },
        ),
    ];
    for (rule, s) in rules {
        let m = masker(s);
        let plan = plan(&m);
        let mut group = c.benchmark_group(format!("mask_{rule}"));
        for (set, rows) in &sets {
            group.throughput(Throughput::Bytes(bytes_of(rows)));
            group.bench_with_input(BenchmarkId::from_parameter(set), rows, |b, rows| {
                let mut counts = MaskCounts::new();
                b.iter(|| mask_rows(&plan, rows, &mut counts))
            });
        }
        group.finish();
    }

    // The PAN scanner over one long text (a log line dump, an error message, a COPY chunk).
    let m = masker(MaskSpec {
        detect: Some("pan".into()),
        ..spec("pan")
    });
    let mut text = Vec::new();
    let mut rng = Lcg(7);
    while text.len() < 64 * 1024 {
        let line = format!(
            "2024-05-01T12:{:02}:{:02}Z INFO order {} paid {}.{:02} EUR by {}@example.com ref {}\n",
            rng.pick(60),
            rng.pick(60),
            100_000 + rng.pick(900_000),
            rng.pick(1_000),
            rng.pick(100),
            FIRST[rng.pick(FIRST.len())].to_lowercase(),
            rng.pick(1 << 30)
        );
        text.extend_from_slice(line.as_bytes());
    }
    let mut group = c.benchmark_group("mask_pan_free_text");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("64KiB_clean", |b| {
        let mut counts = MaskCounts::new();
        b.iter(|| m.mask_bytes(black_box(&text), &mut counts, "text").len())
    });
    group.finish();
}

criterion_group!(benches, masking);
criterion_main!(benches);
