//! Tests of the line editor: keystrokes in, typed lines out.

use super::*;

const LEFT: &str = "\x1b[D";
const RIGHT: &str = "\x1b[C";
const UP: &str = "\x1b[A";

/// The texts of the lines `input` ends, fed in one piece.
fn lines(input: &str) -> Vec<String> {
    LineEditor::new()
        .feed(input.as_bytes())
        .into_iter()
        .map(|l| l.text().to_owned())
        .collect()
}

/// The one line `input` ends.
fn line(input: &str) -> TypedLine {
    let mut all = LineEditor::new().feed(input.as_bytes());
    assert_eq!(all.len(), 1, "{input:?}: {all:?}");
    all.remove(0)
}

/// The lines of `input` fed one byte at a time: the same as in one piece.
fn bytewise(input: &[u8]) -> Vec<(String, LineNotes)> {
    let mut ed = LineEditor::new();
    input
        .iter()
        .flat_map(|b| ed.feed(std::slice::from_ref(b)))
        .map(|l| (l.text().to_owned(), l.notes()))
        .collect()
}

#[test]
fn lines_end_at_cr_or_lf_with_their_end_index() {
    let out = LineEditor::new().feed(b"ls -la\rpwd\n");
    let got: Vec<_> = out.iter().map(|l| (l.text(), l.end())).collect();
    assert_eq!(got, [("ls -la", 7), ("pwd", 11)]);
    assert!(out.iter().all(|l| l.notes().is_empty()));
}

#[test]
fn cr_lf_is_one_end_and_empty_lines_are_not_reported() {
    let out = LineEditor::new().feed(b"ls\r\n\r\n\r\rpwd\r\n");
    let got: Vec<_> = out.iter().map(|l| (l.text(), l.end())).collect();
    assert_eq!(got, [("ls", 3), ("pwd", 12)]);
    // CR in one feed, LF in the next.
    let mut ed = LineEditor::new();
    assert_eq!(ed.feed(b"date\r").len(), 1);
    assert!(ed.feed(b"\n").is_empty());
    assert!(ed.pending().is_none());
}

#[test]
fn utf8_split_across_feeds() {
    let text = "echo grüße 💳 日本\r";
    assert_eq!(
        bytewise(text.as_bytes()),
        [("echo grüße 💳 日本".to_owned(), LineNotes::default())]
    );
    // Invalid bytes become U+FFFD, and the byte that broke a sequence still counts.
    assert_eq!(lines("a\u{0}b\r"), ["ab"]);
    let out = LineEditor::new().feed(b"x\xff\xc3y\xe2\x82\r");
    assert_eq!(out[0].text(), "x\u{fffd}\u{fffd}y\u{fffd}");
}

#[test]
fn backspace_and_kills() {
    assert_eq!(lines("lss\x7f -l\x08a\r"), ["ls -a"]);
    assert_eq!(lines("\x7f\x7fok\r"), ["ok"]);
    // Ctrl-U kills to the start of the line, Ctrl-K to its end.
    assert_eq!(lines("rm -rf /\x15ls\r"), ["ls"]);
    assert_eq!(lines(&format!("abcdef{LEFT}{LEFT}\x15\r")), ["ef"]);
    assert_eq!(lines(&format!("abcdef{LEFT}{LEFT}\x0b\r")), ["abcd"]);
    // Ctrl-W: the blank-delimited word before the cursor, with the blanks after it.
    assert_eq!(lines("cat /etc/passwd  \x17shadow\r"), ["cat shadow"]);
    // Alt-Backspace and Alt-d: alphanumeric words.
    assert_eq!(lines("cat /etc/passwd\x1b\x7fhosts\r"), ["cat /etc/hosts"]);
    assert_eq!(lines("one two three\x1bb\x1bb\x1bd\r"), ["one  three"]);
    // Ctrl-Y yanks what was last killed.
    assert_eq!(lines("secret\x15echo \x19\r"), ["echo secret"]);
}

#[test]
fn ctrl_c_discards_and_ctrl_d_deletes() {
    let mut ed = LineEditor::new();
    assert!(ed.feed(b"rm -rf /\x03").is_empty());
    assert!(ed.pending().is_none());
    let out = ed.feed(b"\x04\x04ls\x01\x04\r");
    assert_eq!(out[0].text(), "s");
    assert!(ed.feed(b"\x04").is_empty());
}

#[test]
fn cursor_moves_place_edits() {
    assert_eq!(
        lines(&format!("echo wrld{LEFT}{LEFT}{LEFT}o\r")),
        ["echo world"]
    );
    assert_eq!(
        lines(&format!("ab{LEFT}{LEFT}{LEFT}x{RIGHT}{RIGHT}{RIGHT}y\r")),
        ["xaby"]
    );
    // Application-mode arrows, Home/End in their several spellings, Delete.
    assert_eq!(lines("cd\x1bODx\x1bOCy\r"), ["cxdy"]);
    assert_eq!(lines("bc\x1b[Ha\x1b[Fd\r"), ["abcd"]);
    assert_eq!(lines("bc\x1b[1~a\x1b[4~d\r"), ["abcd"]);
    assert_eq!(lines("bc\x01a\x05d\r"), ["abcd"]);
    assert_eq!(lines("abc\x02\x02\x1b[3~\r"), ["ac"]);
    // Ctrl-Left/Right move by words; Ctrl-B/F by characters.
    assert_eq!(
        lines("git push origin\x1b[1;5D\x1b[1;5D-f \r"),
        ["git -f push origin"]
    );
    assert_eq!(lines("ab\x02\x02\x06X\r"), ["aXb"]);
    // Ctrl-T transposes.
    assert_eq!(lines("sl\x14\r"), ["ls"]);
    assert_eq!(lines("gti\x02\x14\r"), ["git"]);
}

#[test]
fn escape_sequences_split_across_feeds() {
    let mut ed = LineEditor::new();
    assert!(ed.feed(b"ls\x1b").is_empty());
    assert!(ed.feed(b"[").is_empty());
    assert!(ed.feed(b"D").is_empty());
    let out = ed.feed(b"x\r");
    assert_eq!(out[0].text(), "lxs");
    // Function keys, focus and mouse reports are skipped.
    assert_eq!(lines("a\x1b[15~\x1bOP\x1b[I\x1b[<0;10;5Mb\r"), ["ab"]);
    // A sequence broken by a control key gives way to it.
    assert_eq!(lines("ls\x1b[1\r"), ["ls"]);
    assert_eq!(lines("ls\x1b\r"), ["ls"]);
}

#[test]
fn history_is_noted() {
    let l = line(&format!("rm -rf /tmp/x{UP}\r"));
    assert_eq!(l.text(), "");
    assert!(l.notes().recalled);
    assert_eq!(l.line().audit_text(), " [edited with history]");
    let l = line(&format!("{UP}{UP} --force\r"));
    assert_eq!(l.text(), " --force");
    assert!(l.notes().recalled);
    let l = line("\x12ssh\r");
    assert_eq!((l.text(), l.notes().recalled), ("ssh", true));
    let l = line("vi \x1b.\r");
    assert_eq!((l.text(), l.notes().recalled), ("vi ", true));
    // The next line starts clean.
    let out = LineEditor::new().feed(format!("{UP}\rls\r").as_bytes());
    assert!(!out[1].notes().recalled);
}

#[test]
fn tab_leaves_a_marker() {
    let l = line("ls /et\tpa\t\r");
    assert_eq!(l.text(), "ls /et\tpa\t");
    assert!(l.notes().completed);
    assert_eq!(
        l.line().audit_text(),
        "ls /et<TAB>pa<TAB> [tab completion on the server]"
    );
}

#[test]
fn bracketed_paste_keeps_the_text() {
    let l = line("echo \x1b[200~hello\tworld\x1b[201~!\r");
    assert_eq!(l.text(), "echo hello\tworld!");
    assert_eq!(
        l.notes(),
        LineNotes {
            pasted: true,
            ..LineNotes::default()
        }
    );
    // Markers split across feeds; a newline inside the paste ends a line.
    let input = b"\x1b[200~make\nmake install\x1b[201~\r";
    let texts: Vec<_> = bytewise(input)
        .into_iter()
        .map(|(t, n)| (t, n.pasted))
        .collect();
    assert_eq!(
        texts,
        [("make".to_owned(), true), ("make install".to_owned(), true)]
    );
    // After the paste, lines are typed again.
    let out = LineEditor::new().feed(b"\x1b[200~a\x1b[201~\rb\r");
    assert!(out[0].notes().pasted && !out[1].notes().pasted);
}

#[test]
fn long_lines_are_cut() {
    let input = format!("echo {}\r", "a".repeat(20_000));
    let l = line(&input);
    assert_eq!(l.text().len(), MAX_LINE);
    assert!(l.notes().truncated);
    assert_eq!(l.end(), input.len());
    // Multi-byte characters are not split by the bound.
    let l = line(&format!("{}\r", "é".repeat(10_000)));
    assert!(l.text().len() <= MAX_LINE && l.notes().truncated);
}

#[test]
fn pending_and_flush_give_the_line_not_entered() {
    let mut ed = LineEditor::new();
    assert!(ed.feed(b"sudo reboot").is_empty());
    let pending = ed.pending().unwrap();
    assert_eq!(pending.text(), "sudo reboot");
    assert_eq!(ed.flush(), Some(pending));
    assert!(ed.pending().is_none() && ed.flush().is_none());
    // A partial escape sequence does not outlive a flush.
    assert!(ed.feed(b"x\x1b[").is_empty());
    assert!(ed.flush().is_some());
    assert_eq!(ed.feed(b"Dy\r")[0].text(), "Dy");
}

#[test]
fn quoted_and_unknown_keys() {
    // Ctrl-V makes the next key literal: a quoted CR ends nothing.
    let l = line("echo \x16\x0d!\r");
    assert_eq!(l.text(), "echo \r!");
    assert_eq!(l.line().audit_text(), "echo ^M!");
    let l = line("ls\x18\x15x\r");
    assert!(l.notes().uncertain);
    let l = line("ls\x1bz\r");
    assert!(l.notes().uncertain);
    // An empty line after an unknown key may have run something: reported.
    assert!(line("\x0f\r").notes().uncertain);
}

#[test]
fn bytewise_equals_whole_and_nothing_panics() {
    let samples: [&[u8]; 4] = [
        b"ls -la\x1b[D\x1b[D\x7f\rpwd\r\n",
        b"\x1b[200~paste\r\nmore\x1b[201~\t\x1bOA\r",
        b"\xe6\x97\xa5\xf0\x9f\x92\xb3\x1b\x1b[1;5Cz\x16\x1b\r",
        b"a\x1b[999999999999999999999999999999999999999999~b\r",
    ];
    for s in samples {
        let mut ed = LineEditor::new();
        let whole: Vec<_> = ed
            .feed(s)
            .into_iter()
            .map(|l| (l.text().to_owned(), l.notes()))
            .collect();
        assert_eq!(bytewise(s), whole, "{s:?}");
    }
    // Random bytes heavy in escapes and controls, fed in random pieces.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let alphabet =
        b"\x1b[O~;0129ACDHF\x7f\x08\x03\x04\x15\x17\x0b\x19\x14\x16\r\n\tab \xc3\xa9\xf0";
    let mut ed = LineEditor::new();
    for _ in 0..2_000 {
        let len = next(64) as usize;
        let input: Vec<u8> = (0..len)
            .map(|_| alphabet[next(alphabet.len() as u64) as usize])
            .collect();
        let mut last = 0;
        for l in ed.feed(&input) {
            assert!(l.end() > last && l.end() <= input.len());
            assert!(matches!(input[l.end() - 1], b'\r' | b'\n'));
            assert!(l.text().len() <= MAX_LINE);
            last = l.end();
        }
    }
}
