//! Throughput of the PostgreSQL hot path: finding frames on the read buffer (what the relay
//! does for every byte) and decoding DataRow values (what masking will do for named columns).
//! Reported in bytes per second.

use bytes::{BufMut, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gatehouse_postgres::frame::{peek_header, split_frame};
use gatehouse_postgres::messages::DataRow;

/// A buffer of `rows` DataRow frames shaped like a pgbench_accounts row
/// (int, int, int, char(84)).
fn data_rows(rows: usize, wide: usize) -> BytesMut {
    let mut buf = BytesMut::new();
    for i in 0..rows {
        let cols: [Vec<u8>; 4] = [
            i.to_string().into_bytes(),
            b"1".to_vec(),
            b"0".to_vec(),
            vec![b' '; wide],
        ];
        let body_len: usize = 2 + cols.iter().map(|c| 4 + c.len()).sum::<usize>();
        buf.put_u8(b'D');
        buf.put_i32((body_len + 4) as i32);
        buf.put_i16(4);
        for c in &cols {
            buf.put_i32(c.len() as i32);
            buf.put_slice(c);
        }
    }
    buf
}

fn frames(c: &mut Criterion) {
    let mut group = c.benchmark_group("pg_frames");
    for wide in [84usize, 1024] {
        let buf = data_rows(10_000, wide);
        group.throughput(Throughput::Bytes(buf.len() as u64));
        group.bench_with_input(BenchmarkId::new("scan_headers", wide), &buf, |b, buf| {
            b.iter(|| {
                let mut off = 0;
                let mut rows = 0u64;
                while let Ok(Some((_, total))) = peek_header(&buf[off..], 1 << 30) {
                    rows += 1;
                    off += total;
                    if off >= buf.len() {
                        break;
                    }
                }
                rows
            })
        });
        group.bench_with_input(BenchmarkId::new("split_frames", wide), &buf, |b, buf| {
            b.iter_batched(
                || buf.clone(),
                |mut buf| {
                    let mut n = 0u64;
                    while let Ok(Some(frame)) = split_frame(&mut buf, 1 << 30) {
                        n += frame.bytes().len() as u64;
                    }
                    n
                },
                criterion::BatchSize::LargeInput,
            )
        });
        group.bench_with_input(
            BenchmarkId::new("decode_data_rows", wide),
            &buf,
            |b, buf| {
                b.iter(|| {
                    let mut off = 0;
                    let mut bytes = 0usize;
                    while let Ok(Some((_, total))) = peek_header(&buf[off..], 1 << 30) {
                        if let Ok(row) = DataRow::decode(&buf[off + 5..off + total]) {
                            for value in row.flatten().flatten() {
                                bytes += value.len();
                            }
                        }
                        off += total;
                        if off >= buf.len() {
                            break;
                        }
                    }
                    bytes
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);
