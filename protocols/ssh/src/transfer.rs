//! Which exec lines are file transfers: the exact server-side invocations of scp and rsync.
//!
//! A transfer's streams are binary, so they are relayed without the output masker and without
//! a terminal cast (its exec line is still judged and audited). That exemption is only for
//! what the clients themselves send: `scp -t|-f [flags] [--] path` and `rsync --server ...`,
//! each word made of characters no shell treats specially. Anything else — a prefix that
//! merely looks like one (`scp x; cat cards.csv`), a quoted path, a pipe — is an ordinary
//! command, masked and recorded. A transfer whose path needs quoting is therefore masked too:
//! that fails closed (a file may arrive with a card number masked), never open.

/// Whether `command` is exactly an scp or rsync server-side invocation.
pub(crate) fn is_transfer(command: &[u8]) -> bool {
    let Ok(line) = std::str::from_utf8(command) else {
        return false;
    };
    // One space between words, no leading or trailing blanks: what the clients send. Any
    // other whitespace (tab, newline) is the shell's business, so not a transfer.
    let words: Vec<&str> = line.split(' ').collect();
    if words.iter().any(|w| w.is_empty() || !w.bytes().all(plain)) {
        return false;
    }
    match words.as_slice() {
        ["scp", rest @ ..] => is_scp_server(rest),
        ["rsync", "--server", rest @ ..] => !rest.is_empty(),
        _ => false,
    }
}

/// For an exact scp server-side invocation: which way its files go (`-t`: the client sends
/// them, an upload; `-f`: the server sends them, a download). `None` for anything else.
pub(crate) fn scp_direction(command: &[u8]) -> Option<gatehouse_core::files::FileDirection> {
    use gatehouse_core::files::FileDirection;
    if !is_transfer(command) || !command.starts_with(b"scp ") {
        return None;
    }
    let line = std::str::from_utf8(command).ok()?;
    let flags = line
        .split(' ')
        .skip(1)
        .take_while(|w| *w != "--" && w.starts_with('-'));
    let mut direction = None;
    for flag in flags {
        if flag.contains('t') {
            direction = Some(FileDirection::Upload);
        } else if flag.contains('f') {
            direction = Some(FileDirection::Download);
        }
    }
    direction
}

/// A byte no POSIX shell gives a meaning to inside a word (no quoting, expansion, globbing,
/// redirection or separation).
fn plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"._,:/=+@%-".contains(&b)
}

/// scp's remote side: flags from the set scp itself passes (`-t` to receive, `-f` to send,
/// `-r -p -d -v -q`, `-T` is client-only), exactly one of `-t`/`-f`, an optional `--`, then
/// one path.
fn is_scp_server(words: &[&str]) -> bool {
    let mut direction = 0;
    let mut rest = words;
    while let [word, tail @ ..] = rest {
        if *word == "--" {
            rest = tail;
            break;
        }
        let Some(flags) = word.strip_prefix('-') else {
            break;
        };
        if flags.is_empty() || !flags.bytes().all(|f| b"tfrpdvq".contains(&f)) {
            return false;
        }
        direction += flags.bytes().filter(|f| matches!(f, b't' | b'f')).count();
        rest = tail;
    }
    direction == 1 && rest.len() == 1 && !rest[0].starts_with('-')
}

#[cfg(test)]
mod tests {
    use super::{is_transfer, scp_direction};
    use gatehouse_core::files::FileDirection;

    #[test]
    fn scp_says_which_way_its_files_go() {
        assert_eq!(scp_direction(b"scp -t /tmp/x"), Some(FileDirection::Upload));
        assert_eq!(
            scp_direction(b"scp -v -r -t -- /srv/"),
            Some(FileDirection::Upload)
        );
        assert_eq!(
            scp_direction(b"scp -rpf q1.csv"),
            Some(FileDirection::Download)
        );
        assert_eq!(scp_direction(b"rsync --server . /x"), None);
        assert_eq!(scp_direction(b"scp -t /tmp/x; cat y"), None);
    }

    #[test]
    fn what_scp_and_rsync_send_is_a_transfer() {
        for line in [
            "scp -t /tmp/x",
            "scp -f /tmp/x",
            "scp -v -r -p -t -- /srv/data/",
            "scp -rpf reports/q1.csv",
            "rsync --server -vlogDtpre.iLsfxCIvu . /srv/dest/",
            "rsync --server --sender -vlogDtpre.iLsfxCIvu . /srv/src/",
        ] {
            assert!(is_transfer(line.as_bytes()), "{line}");
        }
    }

    #[test]
    fn anything_a_shell_would_read_differently_is_a_command() {
        for line in [
            " scp x; cat cards.csv",
            "scp x; cat cards.csv",
            "scp -t /tmp/x; cat cards.csv",
            "scp -t /tmp/x && cat cards.csv",
            "scp -t /tmp/x|cat",
            "scp -t $(cat cards.csv)",
            "scp -t `id`",
            "scp -t '/tmp/a b'",
            "scp -t /tmp/x\ncat cards.csv",
            "scp -t /tmp/x\tcat",
            "scp  -t /tmp/x",
            "scp -t /tmp/x ",
            "scp -t /tmp/*",
            "scp -t ~/x",
            "scp -t a b",
            "scp -t",
            "scp -t -f x",
            "scp -tf x",
            "scp -o ProxyCommand=x -t y",
            "scp x",
            "/usr/bin/scp -t x",
            "rsync --server",
            "rsync --daemon --server . /",
            "rsync --server . /x >/tmp/y",
            "sftp-server",
            "/usr/lib/openssh/sftp-server",
            "cat cards.csv # scp -t x",
        ] {
            assert!(!is_transfer(line.as_bytes()), "{line:?}");
        }
        assert!(!is_transfer(b"scp -t /tmp/\xff"));
    }
}
