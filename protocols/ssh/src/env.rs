//! Which `env` requests reach the host: the locale and colour variables OpenSSH's own
//! `AcceptEnv` passes by default, with printable values. Anything else (`LD_PRELOAD`,
//! `BASH_ENV`, `PATH`...) would change what the host runs before the audited command starts,
//! so it is refused; every request, passed or refused, is an entry in the session's audit.

/// The longest value passed on: a locale name is a few dozen bytes.
const MAX_VALUE: usize = 256;

/// Whether the variable may be set on the host for the channel's command.
pub(crate) fn allowed(name: &str, value: &str) -> bool {
    let name_ok = matches!(name, "LANG" | "LANGUAGE" | "COLORTERM" | "NO_COLOR")
        || name
            .strip_prefix("LC_")
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_uppercase()));
    name_ok && value.len() <= MAX_VALUE && value.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// The audit text of a request.
pub(crate) fn describe(name: &str, value: &str, passed: bool) -> String {
    let name: String = name.chars().take(64).collect();
    if passed {
        format!("env {name}={value}")
    } else {
        let shown: String = value.chars().take(MAX_VALUE).collect();
        format!("env {name}={shown:?} refused: not passed to the host")
    }
}

#[cfg(test)]
mod tests {
    use super::allowed;

    #[test]
    fn locales_pass_and_what_changes_execution_does_not() {
        assert!(allowed("LANG", "en_US.UTF-8"));
        assert!(allowed("LC_ALL", "C"));
        assert!(allowed("LC_CTYPE", "C.UTF-8"));
        for (name, value) in [
            ("LD_PRELOAD", "/tmp/x.so"),
            ("BASH_ENV", "/tmp/x"),
            ("PATH", "/tmp"),
            ("LC_", "C"),
            ("LC_all", "C"),
            ("LANG", "C\n; id"),
            ("LANG", "\u{7f}"),
        ] {
            assert!(!allowed(name, value), "{name}={value:?}");
        }
        assert!(!allowed("LANG", &"x".repeat(300)));
    }
}
