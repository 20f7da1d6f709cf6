//! What keeps the gateway reading SQL as the server does on this wire: the startup
//! parameters a client may send, and the server-reported settings that must not change.
//!
//! The core reads text with PostgreSQL's own parser under `standard_conforming_strings = on`
//! and in an ASCII-safe client encoding. Statements that would change either are refused by
//! the core; the server's ParameterStatus reports are the backstop for any other route (a
//! role default, a function), and end the session rather than let one text be read two ways.

use gatehouse_core::classify::postgres::{encoding_is_safe, PINNED};
use gatehouse_core::ConnectionSpec;

use crate::error::PgError;

/// Startup parameters passed upstream. Anything else is refused: a startup parameter sets a
/// setting for the whole session before any statement the audit could see.
const ALLOWED: &[&str] = &[
    "user",
    "database",
    "application_name",
    "fallback_application_name",
    "client_encoding",
    "datestyle",
    "timezone",
    "intervalstyle",
    "extra_float_digits",
    "search_path",
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "default_transaction_isolation",
    "default_transaction_read_only",
    "standard_conforming_strings",
    "replication",
];

/// Checks a client's startup parameters against the allow-list and the reading rules.
/// `options` passes only where the connection allows it.
pub fn check_startup(params: &[(String, String)], spec: &ConnectionSpec) -> Result<(), PgError> {
    for (key, value) in params {
        let lower = key.to_ascii_lowercase();
        if lower == "options" {
            if spec.startup_options {
                continue;
            }
            return Err(PgError::Unreadable(format!(
                "startup parameter \"options\" ({value}) is refused: it would change the \
                 session's settings before the gateway audits anything; connection \"{}\" \
                 needs `startup_options = true` to allow it",
                spec.name
            )));
        }
        if !ALLOWED.contains(&lower.as_str()) {
            return Err(PgError::Unreadable(format!(
                "startup parameter \"{key}\" is not passed through the gateway; set it with SET \
                 after connecting, where it is audited"
            )));
        }
        setting(&lower, value)?;
    }
    Ok(())
}

/// Checks a setting's value as a client sent it or the server reported it: the pinned ones
/// must stay as the gateway reads text.
pub fn setting(name: &str, value: &str) -> Result<(), PgError> {
    let name = name.to_ascii_lowercase();
    if PINNED.contains(&name.as_str()) && !value.eq_ignore_ascii_case("on") {
        return Err(PgError::Unreadable(format!(
            "{name} is {value}: the gateway reads SQL with it on, and cannot read text as the \
             server would; leave it on (check ALTER ROLE/DATABASE settings of the connection's \
             user)"
        )));
    }
    if name == "client_encoding" && !encoding_is_safe(value) {
        return Err(PgError::Unreadable(format!(
            "client encoding {value} is not supported through the gateway: the gateway reads \
             SQL only in encodings where an ASCII byte is always that character and that it \
             decodes exactly (UTF8, LATIN1-10, WIN125x, KOI8, EUC_JP/KR/CN); use UTF8"
        )));
    }
    Ok(())
}

/// The startup parameters the session's entry records: all the client sent but the user and
/// database, which the entry shows as the claimed user and the connection.
pub fn recorded(params: &[(String, String)]) -> Vec<(String, String)> {
    params
        .iter()
        .filter(|(k, _)| k != "user" && k != "database")
        .cloned()
        .collect()
}
