//! Ingest throughput and CPU per audit entry of a store: `STATEMENTS` commands (admission and
//! outcome each) from 8 concurrent sessions go through the journal into the database, as a
//! gateway's would; the run ends when the last is in the database.
//!
//!   cargo run --release -p gatehouse-benches --example ingest -- STATE [STATEMENTS]
//!   STATE: sqlite:/tmp/x.db | postgres://postgres@127.0.0.1:5432/gh_ingest
//!
//! Prints statements per second, and CPU per statement: the ingest thread's, this process's
//! and the whole machine's (which counts the PostgreSQL server's work too).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use gatehouse_audit::{Location, Store, StoreOptions};
use gatehouse_core::store::AuditSink;
use gatehouse_core::{
    Classification, CommandCompletion, CommandRecord, Outcome, Protocol, SessionEnd, SessionId,
    SessionInfo, StatementClass, TokenId, Verdict,
};

const SESSIONS: u64 = 8;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(state), statements) = (args.next(), args.next()) else {
        eprintln!("usage: ingest STATE [STATEMENTS]");
        return ExitCode::FAILURE;
    };
    let statements: u64 = statements.and_then(|n| n.parse().ok()).unwrap_or(50_000);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ingest: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&state, statements)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ingest: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(state: &str, statements: u64) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(
        Location::parse(state, &PathBuf::from("."))?,
        &StoreOptions {
            state_dir: Some(dir.path().to_owned()),
            instance: Some(format!("bench-{}", std::process::id())),
        },
    )?;
    let writer = Arc::new(store.start_writer()?);
    let before = Cpu::now();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..SESSIONS {
        let writer = writer.clone();
        tasks.push(tokio::spawn(async move {
            let id = SessionId(Arc::from(format!("bench{}{s:04}", std::process::id())));
            writer.session_opened(&session(&id)).await?;
            for seq in 1..=statements / SESSIONS {
                writer.command_admitted(command(&id, seq)).await?;
                writer.command_finished(completion(&id, seq));
            }
            writer.session_closed(&end(&id)).await?;
            Ok::<_, gatehouse_core::StoreError>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let journaled = started.elapsed();
    writer.flush().await?;
    // The ticker applies what flush found still journaled; wait for the backlog to drain.
    while writer.health().backlog > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let after = Cpu::now();
    let n = statements as f64;
    let per = |secs: f64| secs * 1e6 / n;
    println!(
        "{state_kind}: {statements} statements ({entries} entries) journaled in {j:.2}s, in the \
         database after {e:.2}s: {rate:.0} statements/s; CPU per statement: ingest thread \
         {ingest:.1} µs, this process {process:.1} µs, machine {machine:.1} µs",
        state_kind = if state.starts_with("sqlite") {
            "sqlite"
        } else {
            "postgres"
        },
        entries = statements * 2 + SESSIONS * 2,
        j = journaled.as_secs_f64(),
        e = elapsed.as_secs_f64(),
        rate = n / elapsed.as_secs_f64(),
        ingest = per(after.ingest - before.ingest),
        process = per(after.process - before.process),
        machine = per(after.machine - before.machine),
    );
    Ok(())
}

/// CPU seconds used so far: the ingest thread, this process, the whole machine.
struct Cpu {
    ingest: f64,
    process: f64,
    machine: f64,
}

impl Cpu {
    fn now() -> Self {
        let tick = 100.0; // USER_HZ on Linux
        let stat_cpu = |text: &str| -> f64 {
            // utime and stime are fields 14 and 15; after the command name's ')' come the
            // state (field 3), then numbers from field 4.
            let rest = text.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
            let f: Vec<f64> = rest
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            (f.get(10).copied().unwrap_or(0.0) + f.get(11).copied().unwrap_or(0.0)) / tick
        };
        let process = std::fs::read_to_string("/proc/self/stat")
            .map(|t| stat_cpu(&t))
            .unwrap_or(0.0);
        let mut ingest = 0.0;
        if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
            for task in tasks.flatten() {
                let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
                if comm.starts_with("gatehouse-audit") {
                    ingest += std::fs::read_to_string(task.path().join("stat"))
                        .map(|t| stat_cpu(&t))
                        .unwrap_or(0.0);
                }
            }
        }
        let machine = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|t| {
                let line = t.lines().next()?.to_owned();
                let f: Vec<f64> = line
                    .split_whitespace()
                    .skip(1)
                    .filter_map(|x| x.parse().ok())
                    .collect();
                // Busy: everything but idle (3) and iowait (4).
                let busy: f64 = f
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != 3 && *i != 4)
                    .map(|(_, v)| v)
                    .sum();
                Some(busy / tick)
            })
            .unwrap_or(0.0);
        Self {
            ingest,
            process,
            machine,
        }
    }
}

fn session(id: &SessionId) -> SessionInfo {
    SessionInfo {
        id: id.clone(),
        identity: Arc::from("pgbench"),
        groups: Arc::from(vec!["batch".to_owned()]),
        token_id: TokenId("tok_bench".into()),
        connection: Arc::from("bench"),
        protocol: Protocol::Postgres,
        client_addr: ([127, 0, 0, 1], 40000).into(),
        claimed_user: "x".into(),
        settings: Vec::new(),
        started_at: SystemTime::now(),
    }
}

fn command(id: &SessionId, seq: u64) -> CommandRecord {
    CommandRecord {
        session: id.clone(),
        seq,
        at: SystemTime::now(),
        identity: Arc::from("pgbench"),
        groups: Arc::from(vec!["batch".to_owned()]),
        connection: Arc::from("bench"),
        protocol: Protocol::Postgres,
        client: Arc::from("127.0.0.1:40000"),
        text: "SELECT abalance FROM pgbench_accounts WHERE aid = $1".into(),
        params: vec![Some(format!("{}", seq * 7919 % 1_000_000))],
        classes: Classification::of(&[StatementClass::Select]),
        verdict: Verdict::Allow,
        rule: None,
        approval: None,
        masked: Default::default(),
    }
}

fn completion(id: &SessionId, seq: u64) -> CommandCompletion {
    CommandCompletion {
        session: id.clone(),
        seq,
        outcome: Outcome::Completed {
            tag: "SELECT 1".into(),
        },
        rows_returned: 1,
        rows_affected: None,
        duration: Duration::from_micros(80),
        finished_at: SystemTime::now(),
        masked: Default::default(),
    }
}

fn end(id: &SessionId) -> SessionEnd {
    SessionEnd {
        id: id.clone(),
        ended_at: SystemTime::now(),
        reason: "client terminated".into(),
        bytes_from_client: 1,
        bytes_from_server: 1,
        recording_sha256: None,
    }
}
