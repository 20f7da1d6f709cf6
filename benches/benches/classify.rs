//! Statement classification throughput (`gatehouse_core::classify`, sqlparser underneath), in
//! statements per second, over a mix an application and its operators send: point reads, joins,
//! writes with and without WHERE, DDL, grants, transactions, session settings.
//!
//! `postgres_mix` is the cost of a cache miss; the session's classification cache avoids it for
//! repeated texts. A hit still costs the cache key (`postgres_cache_key`: the text with the
//! server lexer's constants folded) and the password scan every admitted text gets before it
//! is stored (`password_scan`).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gatehouse_core::classify::mysql::Modes;
use gatehouse_core::classify::{folded_key, secrets};
use gatehouse_core::{classify, Protocol};

const MIX: &[&str] = &[
    "SELECT abalance FROM pgbench_accounts WHERE aid = 48213",
    "UPDATE pgbench_accounts SET abalance = abalance + -2714 WHERE aid = 48213",
    "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (7, 1, 48213, -2714, CURRENT_TIMESTAMP)",
    "SELECT c.id, c.name, c.email, o.total, o.created_at FROM customers c JOIN orders o ON o.customer_id = c.id \
     WHERE o.created_at >= $1 AND c.country = $2 ORDER BY o.created_at DESC LIMIT 50",
    "SELECT count(*), date_trunc('day', created_at) AS day FROM payments WHERE status = 'settled' \
     GROUP BY 2 ORDER BY 2",
    "WITH recent AS (SELECT customer_id, sum(total) AS spent FROM orders WHERE created_at > now() - interval '30 days' \
     GROUP BY customer_id) SELECT c.name, r.spent FROM recent r JOIN customers c ON c.id = r.customer_id WHERE r.spent > 1000",
    "DELETE FROM sessions WHERE expires_at < now()",
    "DELETE FROM audit_scratch",
    "UPDATE customers SET email = 'new@example.com', updated_at = now() WHERE id = 42 RETURNING id",
    "BEGIN",
    "COMMIT",
    "SET statement_timeout = '5s'",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_created_at_idx ON orders (created_at)",
    "ALTER TABLE customers ADD COLUMN loyalty_tier text DEFAULT 'none'",
    "GRANT SELECT ON ALL TABLES IN SCHEMA reporting TO analyst",
    "TRUNCATE TABLE staging_events",
    "INSERT INTO orders (customer_id, total, currency) SELECT id, 0, 'EUR' FROM customers WHERE created_at > $1 \
     ON CONFLICT (customer_id) DO NOTHING",
    "SELECT id, card_number, expiry FROM cards WHERE customer_id = $1 FOR UPDATE",
    "SELECT 1",
    "SHOW search_path",
];

fn classification(c: &mut Criterion) {
    let mut group = c.benchmark_group("classify");
    group.throughput(Throughput::Elements(MIX.len() as u64));
    group.bench_function("postgres_mix", |b| {
        b.iter(|| {
            let mut classes = 0usize;
            for sql in MIX {
                classes += classify(Protocol::Postgres, black_box(sql)).classes().len();
            }
            classes
        })
    });
    group.bench_function("postgres_cache_key", |b| {
        b.iter(|| {
            let mut len = 0usize;
            for sql in MIX {
                len += folded_key(Protocol::Postgres, black_box(sql)).map_or(0, |k| k.len());
            }
            len
        })
    });
    group.bench_function("password_scan", |b| {
        b.iter(|| {
            let mut found = 0usize;
            for sql in MIX {
                found += usize::from(
                    secrets::redact(Protocol::Postgres, black_box(sql), Modes::default()).is_some(),
                );
            }
            found
        })
    });
    group.finish();
}

criterion_group!(benches, classification);
criterion_main!(benches);
