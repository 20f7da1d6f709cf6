//! What keeps the gateway reading SQL as the MySQL server does: the session's lexing modes
//! (from the server's own status flags and greeting), the client character sets it can read.
//!
//! `NO_BACKSLASH_ESCAPES` is in the status flags of every OK and EOF the server sends, and
//! commands run one at a time on this wire, so the next text is always read under the mode
//! the server will lex it with. `ANSI_QUOTES` is not reported; the core reads a text with
//! double quotes both ways and calls it `unknown` where the readings differ.

use gatehouse_core::classify::mysql::Modes;
use gatehouse_core::Session;

/// `SERVER_STATUS_NO_BACKSLASH_ESCAPES`.
pub const NO_BACKSLASH_ESCAPES: u16 = 0x0200;

/// Collation ids of character sets whose multi-byte characters can hold an ASCII backslash
/// or quote byte (big5, sjis, gbk, cp932, gb18030).
const UNSAFE_COLLATIONS: &[u8] = &[1, 84, 13, 88, 28, 87, 95, 96, 248, 249, 250];

/// Whether a handshake's collation id names a character set the gateway can read text in.
pub fn collation_is_safe(id: u8) -> bool {
    !UNSAFE_COLLATIONS.contains(&id)
}

/// The lexing modes of a server, from its version text and the login OK's status flags.
pub fn modes_of(version: &str, status: u16) -> Modes {
    let mariadb = version.to_ascii_lowercase().contains("mariadb");
    // "10.11.6-MariaDB-0+deb12u1" (or "5.5.5-10.11.6-MariaDB" from older servers).
    let numbers = version.strip_prefix("5.5.5-").unwrap_or(version);
    let mut parts = numbers
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor, patch) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    Modes {
        no_backslash_escapes: status & NO_BACKSLASH_ESCAPES != 0,
        ansi_quotes: false,
        version: major * 10_000 + minor.min(99) * 100 + patch.min(99),
        mariadb,
        charset_unsure: false,
    }
}

/// Follows a command's final status flags: the next text is lexed as the server now will.
pub fn follow_status(session: &Session, status: u16) {
    let modes = session.mysql_modes();
    let no_backslash_escapes = status & NO_BACKSLASH_ESCAPES != 0;
    if modes.no_backslash_escapes != no_backslash_escapes {
        session.set_mysql_modes(Modes {
            no_backslash_escapes,
            ..modes
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_modes() {
        let m = modes_of("10.11.6-MariaDB-0+deb12u1", 0x0202);
        assert_eq!(m.version, 101106);
        assert!(m.mariadb && m.no_backslash_escapes);
        let m = modes_of("8.0.36", 2);
        assert_eq!(m.version, 80036);
        assert!(!m.mariadb && !m.no_backslash_escapes);
        assert!(!collation_is_safe(28));
        assert!(collation_is_safe(45));
    }
}
