//! `gatehouse replay SESSION_ID`: a session's recording as a readable timeline.

use clap::Args;
use gatehouse_audit::read_recording;
use gatehouse_core::store::RecordingEvent;

use super::open_store;
use crate::config::Config;
use crate::error::CliError;
use crate::table;

/// Arguments of `replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The session id (a unique prefix is enough).
    session: String,
    /// The raw events as JSON.
    #[arg(long)]
    json: bool,
}

/// Prints the timeline.
pub fn run(config: &Config, args: &ReplayArgs) -> Result<(), CliError> {
    let store = open_store(config)?;
    let session = store.find_session(&args.session)?;
    let events = read_recording(&config.recordings_dir(), &session.id)?;
    if args.json {
        table::json(&events);
        return Ok(());
    }
    println!(
        "session {}  {} -> {} ({})  from {}",
        session.id, session.identity, session.connection, session.protocol, session.client
    );
    for event in &events {
        match event {
            RecordingEvent::Start {
                at,
                identity,
                connection,
                client,
                ..
            } => {
                println!("{at}  open     {identity} on {connection} from {client}");
            }
            RecordingEvent::Command {
                at,
                seq,
                text,
                params,
                class,
            } => {
                println!("{at}  #{seq:<6} [{class}] {}", text.trim());
                if !params.is_empty() {
                    let shown: Vec<String> = params
                        .iter()
                        .enumerate()
                        .map(|(i, p)| format!("${}={}", i + 1, p.as_deref().unwrap_or("NULL")))
                        .collect();
                    println!("{:24}         params {}", "", shown.join(" "));
                }
            }
            RecordingEvent::Result {
                at,
                seq,
                status,
                detail,
                rows,
                duration_us,
            } => {
                println!(
                    "{at}  #{seq:<6} -> {status} {detail} ({rows} rows, {:.2} ms)",
                    *duration_us as f64 / 1000.0
                );
            }
            RecordingEvent::Notice { at, text } => println!("{at}  note     {text}"),
            RecordingEvent::End {
                at,
                reason,
                bytes_from_client,
                bytes_from_server,
            } => {
                println!("{at}  close    {reason} ({bytes_from_client} bytes in, {bytes_from_server} bytes out)");
            }
            RecordingEvent::CastStart {
                at,
                channel,
                file,
                width,
                height,
                term,
                command,
            } => {
                let what = match command {
                    Some(command) => format!("exec {command}"),
                    None => "shell".to_owned(),
                };
                let term = match term {
                    Some(term) => format!("{term}, {width}x{height}"),
                    None => "no terminal".to_owned(),
                };
                println!("{at}  ch{channel:<5} {what} ({term}) -> {file}");
            }
            RecordingEvent::Cast {
                at,
                channel,
                sha256,
                bytes,
                status,
                ..
            } => {
                let status = status.as_deref().unwrap_or("ended");
                let short = sha256.get(..16).unwrap_or(sha256);
                println!(
                    "{at}  ch{channel:<5} {status} (cast sealed: {bytes} bytes, sha256 {short}…)"
                );
            }
        }
    }
    Ok(())
}
