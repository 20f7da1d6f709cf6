//! `gatehouse replay SESSION_ID`: a session's recording as a readable timeline; with `--play`,
//! its terminals (SSH shells and exec channels) played back (see [`super::play`]).

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
    /// Play the session's terminals (asciicasts of SSH shells and exec channels) to stdout
    /// with their timing, instead of the timeline.
    #[arg(long, conflicts_with = "json")]
    play: bool,
    /// With --play: only this channel's terminal (the timeline lists them).
    #[arg(long, requires = "play")]
    channel: Option<u32>,
    /// With --play: speed factor (2 plays twice as fast).
    #[arg(long, requires = "play")]
    speed: Option<f64>,
    /// With --play: no pauses at all (for scripts).
    #[arg(long, requires = "play")]
    instant: bool,
    /// With --play: longest pause, in seconds (idle time cut short).
    #[arg(long, requires = "play")]
    idle_limit: Option<f64>,
}

/// Prints the timeline.
pub fn run(config: &Config, args: &ReplayArgs) -> Result<(), CliError> {
    let store = open_store(config)?;
    let session = store.find_session(&args.session)?;
    if args.play {
        let options = super::play::PlayOptions {
            channel: args.channel,
            speed: args.speed.unwrap_or(1.0),
            instant: args.instant,
            idle_limit: args.idle_limit,
        };
        return super::play::play(&config.recordings_dir(), &session.id, &options);
    }
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
            RecordingEvent::File {
                at,
                seq,
                direction,
                path,
                bytes,
                sha256,
                content,
                note,
            } => {
                let hash = sha256.as_deref().unwrap_or("unknown");
                println!("{at}  #{seq:<6} {direction} {path} ({bytes} bytes, sha256 {hash})");
                if let Some(note) = note {
                    println!("{:24}         {note}", "");
                }
                // The copy of a small upload, line by line: the script or module that ran.
                for line in content.iter().flat_map(|c| c.lines()) {
                    println!("{:24}         | {line}", "");
                }
            }
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
    if events
        .iter()
        .any(|e| matches!(e, RecordingEvent::CastStart { .. }))
    {
        println!(
            "terminals: gatehouse replay {} --play [--channel N] [--speed X] [--instant]",
            session.id
        );
    }
    Ok(())
}
