//! `gatehouse replay SESSION_ID --play`: a session's terminal recordings (the asciicasts of its
//! SSH shells and exec channels) written to stdout with their timing, as the client saw them.
//! What is said about each cast (which channel, whether it matches its seal) goes to stderr,
//! so stdout is the terminal's output alone.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use gatehouse_audit::cast::{casts_of, read_cast, CastInfo};
use gatehouse_audit::recording::file_sha256;

use crate::error::CliError;

/// How to play.
#[derive(Debug, Clone, Copy)]
pub struct PlayOptions {
    /// Only this channel.
    pub channel: Option<u32>,
    /// Speed factor (2.0 = twice as fast).
    pub speed: f64,
    /// No pauses at all.
    pub instant: bool,
    /// Longest pause, in seconds.
    pub idle_limit: Option<f64>,
}

/// Plays the casts of `session` (those of one channel, or all in the order they started).
pub fn play(dir: &Path, session: &str, options: &PlayOptions) -> Result<(), CliError> {
    if !(options.speed.is_finite() && options.speed > 0.0) {
        return Err(CliError::Usage("--speed must be a positive number".into()));
    }
    if options
        .idle_limit
        .is_some_and(|l| !(l.is_finite() && l >= 0.0))
    {
        return Err(CliError::Usage(
            "--idle-limit must be seconds, 0 or more".into(),
        ));
    }
    let casts = casts_of(dir, session)?;
    if casts.is_empty() {
        return Err(CliError::Usage(format!(
            "session {session} has no terminal recording: only SSH shells and exec channels \
             are recorded as casts"
        )));
    }
    let chosen: Vec<&CastInfo> = casts
        .iter()
        .filter(|c| options.channel.is_none_or(|ch| c.channel == ch))
        .collect();
    if chosen.is_empty() {
        let channels: Vec<String> = casts.iter().map(|c| c.channel.to_string()).collect();
        return Err(CliError::Usage(format!(
            "session {session} has no terminal on channel {}; its channels: {}",
            options.channel.unwrap_or_default(),
            channels.join(", ")
        )));
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for cast in chosen {
        let path = dir.join(&cast.file);
        eprintln!(
            "── channel {}: {} ({}x{}), {}: {} ──",
            cast.channel,
            cast.command.as_deref().unwrap_or("shell"),
            cast.width,
            cast.height,
            cast.file,
            seal_state(&path, cast)
        );
        match play_one(&path, options, &mut out) {
            Ok(()) => {}
            // Stdout was closed (`| head`): the reader has what it wanted.
            Err(Stop::Closed) => return Ok(()),
            Err(Stop::Failed(e)) => return Err(e),
        }
    }
    Ok(())
}

/// Why playing stopped early.
enum Stop {
    /// Stdout was closed.
    Closed,
    /// The cast could not be read, or stdout written.
    Failed(CliError),
}

impl From<gatehouse_audit::AuditError> for Stop {
    fn from(e: gatehouse_audit::AuditError) -> Self {
        Self::Failed(e.into())
    }
}

fn seal_state(path: &Path, cast: &CastInfo) -> &'static str {
    match (&cast.seal, file_sha256(path)) {
        (_, Err(_)) => "MISSING",
        (Some(seal), Ok(hash)) if seal.sha256 == hash => "matches its seal",
        (Some(_), Ok(_)) => "DOES NOT MATCH its seal",
        (None, Ok(_)) => "not sealed (channel live, or the gateway stopped abruptly)",
    }
}

fn play_one(path: &Path, options: &PlayOptions, out: &mut impl Write) -> Result<(), Stop> {
    let (_, frames) = read_cast(path)?;
    let mut last = 0.0f64;
    for frame in frames {
        let frame = frame?;
        if frame.code != "o" {
            continue;
        }
        let mut pause = (frame.offset - last).max(0.0);
        last = frame.offset.max(last);
        if let Some(limit) = options.idle_limit {
            pause = pause.min(limit);
        }
        if !options.instant && pause > 0.0 {
            // Flush before waiting: what came before the pause is on screen during it.
            out.flush().map_err(write_error)?;
            // An offset too large for a `Duration` is a damaged file: no pause for it.
            if let Ok(pause) = Duration::try_from_secs_f64(pause / options.speed) {
                std::thread::sleep(pause);
            }
        }
        out.write_all(frame.data.as_bytes()).map_err(write_error)?;
    }
    out.flush().map_err(write_error)
}

fn write_error(e: std::io::Error) -> Stop {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Stop::Closed
    } else {
        Stop::Failed(CliError::Usage(format!("cannot write to stdout: {e}")))
    }
}
