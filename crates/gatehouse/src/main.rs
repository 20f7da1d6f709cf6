//! `gatehouse`: the gateway binary and its command line (contract in DESIGN.md).

#![forbid(unsafe_code)]

mod admin;
mod cli;
mod config;
mod error;
mod evidence;
mod limits;
mod serve;
mod table;
mod tls;
mod webhook;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::error::CliError;

/// The process's heap: mimalloc's per-thread free lists serve the relay's and the ingest's
/// small, short-lived buffers with fewer instructions than glibc's malloc (callgrind, per
/// statement).
#[global_allocator]
static HEAP: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Gatehouse: an access gateway for PostgreSQL, MySQL and SSH that authenticates tokens,
/// decides per command, and keeps the evidence.
#[derive(Debug, Parser)]
#[command(name = "gatehouse", version, about)]
struct Cli {
    /// The configuration file.
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_CONFIG",
        default_value = "gatehouse.toml"
    )]
    config: PathBuf,
    /// The admin API of the running gateway, for online commands (default: `http://` +
    /// `[listen] admin` of the configuration).
    #[arg(long, global = true, env = "GATEHOUSE_SERVER")]
    server: Option<String>,
    /// The zone dates and times without an offset are read in (`--from 2026-01-01`): an IANA
    /// name such as `Europe/Berlin`, `UTC` (the default) or an offset like `+02:00`.
    #[arg(long, global = true, env = "GATEHOUSE_TZ", value_parser = cli::when::parse_zone)]
    tz: Option<jiff::tz::TimeZone>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the gateway.
    Serve,
    /// Issue, list and revoke service tokens.
    Token {
        #[command(subcommand)]
        command: cli::token::TokenCmd,
    },
    /// Register, list and remove SSH public keys (the SSH wire's alternative to a token).
    Key {
        #[command(subcommand)]
        command: cli::key::KeyCmd,
    },
    /// List sessions.
    Sessions {
        #[command(subcommand)]
        command: cli::sessions::SessionsCmd,
    },
    /// Print a session's recording as a timeline (`--play`: play its SSH terminals).
    Replay(cli::replay::ReplayArgs),
    /// List audit entries.
    Audit {
        #[command(subcommand)]
        command: cli::audit::AuditCmd,
    },
    /// List approval requests (online: needs GATEHOUSE_TOKEN).
    Approvals {
        #[command(subcommand)]
        command: cli::approvals::ApprovalsCmd,
    },
    /// Approve a held command (online: needs GATEHOUSE_TOKEN of an approver).
    Approve(cli::approvals::DecideArgs),
    /// Deny a held command (online: needs GATEHOUSE_TOKEN of an approver).
    Deny(cli::approvals::DecideArgs),
    /// Write the evidence package of a period for an auditor.
    Evidence(evidence::EvidenceArgs),
    /// Retention of the evidence.
    Retention {
        #[command(subcommand)]
        command: RetentionCmd,
    },
}

#[derive(Debug, Subcommand)]
enum RetentionCmd {
    /// Remove what is past `[gateway] retention_days` (serve does it every 6 hours).
    Run(cli::retention::RetentionArgs),
}

fn main() -> ExitCode {
    // Everything the gateway writes (the store, its WAL, the journal, recordings, casts,
    // keys, evidence) holds audit data or secrets: readable by its own user only.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let cli = Cli::parse();
    init_tracing(matches!(cli.command, Cmd::Serve));
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gatehouse: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    let config = Config::load(&cli.config)?;
    let server = cli.server.as_deref();
    let clock = cli::when::Clock::new(cli.tz.unwrap_or(jiff::tz::TimeZone::UTC));
    match cli.command {
        Cmd::Serve => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| CliError::Usage(format!("cannot start the runtime: {e}")))?;
            runtime.block_on(serve::run(config))
        }
        Cmd::Token { command } => cli::token::run(&config, server, command),
        Cmd::Key { command } => cli::key::run(&config, server, command),
        Cmd::Sessions { command } => cli::sessions::run(&config, &clock, command),
        Cmd::Replay(args) => cli::replay::run(&config, &args),
        Cmd::Audit { command } => cli::audit::run(&config, &clock, command),
        Cmd::Approvals { command } => cli::approvals::list(&config, server, command),
        Cmd::Approve(args) => cli::approvals::decide(&config, server, &args, true),
        Cmd::Deny(args) => cli::approvals::decide(&config, server, &args, false),
        Cmd::Retention {
            command: RetentionCmd::Run(args),
        } => cli::retention::run(&config, &clock, &args),
        Cmd::Evidence(args) => evidence::run(&config, &clock, &args),
    }
}

fn init_tracing(serving: bool) {
    let default = if serving { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("GATEHOUSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
