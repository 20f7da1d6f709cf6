//! SSH output masking throughput (`gatehouse_ssh::output_mask::OutputMasker`), in bytes per
//! second of channel output pushed through it in 32 KiB chunks (russh's usual packet size), as
//! an exec's stdout would be: `cat` of a log, or scp/rsync of binary data.
//!
//! Three streams of 8 MiB: `text_clean` (log lines full of numbers, no card number, no
//! address), `text_some_pan` (one line in 50 holds a card number) and `binary` (random bytes).
//! Two maskers: `pan` (card numbers only: only digit runs are held back between chunks) and
//! `pan_email` (e-mail addresses too: words are held back as well, so most text chunks are
//! copied). `baseline_pan` is `Masker::mask_bytes` on each chunk alone, what masking costs
//! without streaming.

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gatehouse_core::mask::{MaskCounts, MaskPolicy, MaskSpec, Masker};
use gatehouse_ssh::output_mask::OutputMasker;

const STREAM: usize = 8 << 20;
const CHUNK: usize = 32 << 10;
const PANS: [&str; 4] = [
    "4111111111111111",
    "5555 5555 5555 4444",
    "3782-822463-10005",
    "6011000990139424",
];
const NAMES: [&str; 6] = ["alice", "bob", "carol", "dmitri", "eve", "fatima"];

/// A deterministic pseudo-random stream (no dependency, same data every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn pick(&mut self, n: usize) -> usize {
        (self.next() as usize) % n
    }
}

/// Log lines; one in `pan_every` (0: none) names a card number.
fn text(pan_every: usize) -> Vec<u8> {
    let mut rng = Lcg(7);
    let mut out = Vec::with_capacity(STREAM + 256);
    let mut i = 0usize;
    while out.len() < STREAM {
        let card = if pan_every > 0 && i.is_multiple_of(pan_every) {
            format!(" card {}", PANS[rng.pick(PANS.len())])
        } else {
            String::new()
        };
        let line = format!(
            "2024-05-01T12:{:02}:{:02}.{:06}Z INFO order {} paid {}.{:02} EUR by user {} ref {}{card} status=ok latency_ms={}\n",
            rng.pick(60),
            rng.pick(60),
            rng.pick(1_000_000),
            100_000 + rng.pick(900_000),
            rng.pick(1_000),
            rng.pick(100),
            NAMES[rng.pick(NAMES.len())],
            rng.pick(1 << 30),
            rng.pick(500),
        );
        out.extend_from_slice(line.as_bytes());
        i += 1;
    }
    out.truncate(STREAM);
    out
}

fn binary() -> Vec<u8> {
    let mut rng = Lcg(11);
    (0..STREAM).map(|_| rng.next() as u8).collect()
}

fn chunks(data: &[u8]) -> Vec<Bytes> {
    data.chunks(CHUNK).map(Bytes::copy_from_slice).collect()
}

fn masker(detect: &[&str]) -> Masker {
    let specs = detect
        .iter()
        .map(|d| MaskSpec {
            name: (*d).to_owned(),
            detect: Some((*d).to_owned()),
            regex: None,
            columns: Vec::new(),
            style: "keep-last-4".to_owned(),
            exempt_groups: Vec::new(),
        })
        .collect();
    match MaskPolicy::new(specs, b"bench key: 32 bytes of secret!!!".to_vec()) {
        Ok(policy) => policy.for_groups(&[]),
        Err(e) => {
            eprintln!("bench mask spec refused: {e}");
            std::process::exit(2)
        }
    }
}

fn output_mask(c: &mut Criterion) {
    let streams = [
        ("text_clean", chunks(&text(0))),
        ("text_some_pan", chunks(&text(50))),
        ("binary", chunks(&binary())),
    ];
    for (name, detect) in [("pan", &["pan"][..]), ("pan_email", &["pan", "email"][..])] {
        let m = masker(detect);
        let mut group = c.benchmark_group(format!("ssh_output_mask_{name}"));
        group.sample_size(10);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(3));
        group.throughput(Throughput::Bytes(STREAM as u64));
        for (stream, chunks) in &streams {
            group.bench_with_input(BenchmarkId::from_parameter(stream), chunks, |b, chunks| {
                let mut om = OutputMasker::new(&m, "stdout");
                b.iter(|| {
                    let mut sent = 0usize;
                    for chunk in chunks {
                        sent += black_box(om.push(chunk.clone())).len();
                    }
                    sent + om.flush().len()
                })
            });
        }
        group.finish();
    }
    let m = masker(&["pan"]);
    let mut group = c.benchmark_group("ssh_output_mask_baseline_pan");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Bytes(STREAM as u64));
    for (stream, chunks) in &streams {
        group.bench_with_input(BenchmarkId::from_parameter(stream), chunks, |b, chunks| {
            let mut counts = MaskCounts::new();
            b.iter(|| {
                chunks
                    .iter()
                    .map(|chunk| black_box(m.mask_bytes(chunk, &mut counts, "stdout")).len())
                    .sum::<usize>()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, output_mask);
criterion_main!(benches);
