//! Best-effort reconstruction of the command lines a user types into an interactive shell, from
//! the keystrokes sent to its pty, for the audit trail (evidence, not a security boundary).
//!
//! [`LineEditor::feed`] takes the client's bytes as they come and returns each line ended by CR
//! or LF with the index just past that byte, so the relay can hold the Enter back until the
//! line's audit entry is durable.
//!
//! The editor follows what readline (bash) and zle (zsh) do with the common keys: printable
//! UTF-8 (split anywhere between feeds), Backspace (DEL or BS), Delete, Ctrl-U (kill to the start
//! of the line), Ctrl-K (to its end), Ctrl-W (the blank-delimited word before the cursor),
//! Alt-Backspace and Alt-d (alphanumeric words), Ctrl-Y (yank what was last killed), Ctrl-T,
//! the cursor moves (arrows, Home, End, Ctrl-A/E/B/F, Alt-b/f, Ctrl-Left/Right), Ctrl-C
//! (the line is dropped), Ctrl-D (deletes at the cursor; ignored on an empty line), Ctrl-V
//! (the next key is literal). Other escape sequences are skipped.
//!
//! What it cannot know is noted on the line ([`LineNotes`]) rather than guessed:
//!
//! - History (Up, Down, Ctrl-P/N/R, Alt-<, Alt->, Alt-.) puts a line the editor never saw in the
//!   shell's buffer: the editor drops what it had, keeps what is typed after, and notes
//!   `recalled`. After Ctrl-R the text is the search string.
//! - Tab completes on the server: a literal tab stays in the text where it was pressed, noted
//!   `completed`.
//! - A bracketed paste (`ESC[200~` … `ESC[201~`) is taken as typed, markers dropped, noted
//!   `pasted`. A CR or LF in it ends a line here even though a shell in bracketed-paste mode
//!   waits for the Enter after the paste: better a pasted line reported early than missed by a
//!   shell that runs it at once.
//! - Past [`MAX_LINE`] bytes the rest is cut, noted `truncated`.
//! - Keys it does not follow (Ctrl-X sequences, undo, other Alt keys...) note `uncertain`.
//!
//! Empty lines are not reported, unless something noted says a recalled or unknown line may
//! have run. CR LF counts as one line end.
//!
//! Full-screen programs (an editor, a pager, a password prompt) get the same treatment: what
//! they receive is reported as lines too. The relay should mask the text like any statement, and
//! knows better than this module when the terminal does not echo (a password being typed).

mod buffer;
mod keys;

use buffer::{LineBuffer, Word};
use keys::{Decoder, Key};

/// Longest line kept, in bytes of UTF-8: the rest is cut (noted `truncated`).
pub const MAX_LINE: usize = 16 * 1024;

/// What is uncertain about a reconstructed line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineNotes {
    /// History was used (recall, search, last argument): the shell's line differs from the text.
    pub recalled: bool,
    /// Tab was pressed: the server completed the text at each literal tab.
    pub completed: bool,
    /// Some of it was pasted (bracketed paste).
    pub pasted: bool,
    /// Longer than [`MAX_LINE`]: the rest was cut.
    pub truncated: bool,
    /// A key the editor does not follow was pressed: the line may differ.
    pub uncertain: bool,
}

/// A line as reconstructed: its text and what is uncertain about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    text: String,
    notes: LineNotes,
}

/// A line the user entered, within the input of one [`LineEditor::feed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedLine {
    line: Line,
    end: usize,
}

/// Reconstructs typed lines from one pty's keystroke stream.
#[derive(Debug)]
pub struct LineEditor {
    keys: Decoder,
    editor: Editor,
}

/// The line being typed and the editing state around it.
#[derive(Debug)]
struct Editor {
    line: LineBuffer,
    notes: LineNotes,
    /// What the last kill took, for Ctrl-Y (kept across lines, as readline does).
    killed: String,
    /// Inside a bracketed paste.
    pasting: bool,
    /// The next key is inserted literally (after Ctrl-V).
    quoted: bool,
    /// The last key was a CR that ended a line: an LF right after it ends nothing.
    after_cr: bool,
}

impl LineNotes {
    /// Whether nothing is noted.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// What is noted, in words, for the audit text.
    pub fn describe(&self) -> Vec<&'static str> {
        [
            (self.recalled, "edited with history"),
            (self.completed, "tab completion on the server"),
            (self.pasted, "pasted"),
            (self.truncated, "cut at 16 KiB"),
            (self.uncertain, "keys not followed"),
        ]
        .into_iter()
        .filter_map(|(on, what)| on.then_some(what))
        .collect()
    }
}

impl Line {
    /// The text as reconstructed (tabs where Tab was pressed).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// What is uncertain about it.
    pub fn notes(&self) -> LineNotes {
        self.notes
    }

    /// The text for the audit trail: control characters shown as `<TAB>` or `^X`, then the
    /// notes in brackets (`ls /et<TAB> [tab completion on the server]`).
    pub fn audit_text(&self) -> String {
        let mut out = String::with_capacity(self.text.len() + 16);
        for c in self.text.chars() {
            match c {
                '\t' => out.push_str("<TAB>"),
                '\x7f' => out.push_str("^?"),
                c if c.is_ascii_control() => {
                    out.push('^');
                    out.push(char::from(c as u8 ^ 0x40));
                }
                c => out.push(c),
            }
        }
        let notes = self.notes.describe();
        if !notes.is_empty() {
            out.push_str(" [");
            out.push_str(&notes.join("; "));
            out.push(']');
        }
        out
    }

    /// The text, owned.
    pub fn into_text(self) -> String {
        self.text
    }
}

impl TypedLine {
    /// The line.
    pub fn line(&self) -> &Line {
        &self.line
    }

    /// The text as reconstructed.
    pub fn text(&self) -> &str {
        &self.line.text
    }

    /// What is uncertain about it.
    pub fn notes(&self) -> LineNotes {
        self.line.notes
    }

    /// The index in the fed input just past the CR or LF that ended the line.
    pub fn end(&self) -> usize {
        self.end
    }

    /// The line, without where it ended.
    pub fn into_line(self) -> Line {
        self.line
    }
}

impl Default for LineEditor {
    fn default() -> Self {
        Self::new()
    }
}

impl LineEditor {
    /// An editor at the start of an empty line.
    pub fn new() -> Self {
        Self {
            keys: Decoder::default(),
            editor: Editor {
                line: LineBuffer::new(MAX_LINE),
                notes: LineNotes::default(),
                killed: String::new(),
                pasting: false,
                quoted: false,
                after_cr: false,
            },
        }
    }

    /// Takes the next keystroke bytes; returns the lines they ended, in order, each with the
    /// index in `input` just past its CR or LF. A partial key or line waits for the next feed.
    pub fn feed(&mut self, input: &[u8]) -> Vec<TypedLine> {
        let mut lines = Vec::new();
        let Self { keys, editor } = self;
        for (i, &b) in input.iter().enumerate() {
            keys.byte(b, &mut |key| {
                if let Some(line) = editor.key(key) {
                    lines.push(TypedLine { line, end: i + 1 });
                }
            });
        }
        lines
    }

    /// The line typed so far and not entered, if any (what [`flush`](Self::flush) would give).
    pub fn pending(&self) -> Option<Line> {
        self.editor.current()
    }

    /// Takes the line typed and not entered, when the shell ends, and starts afresh.
    pub fn flush(&mut self) -> Option<Line> {
        let line = self.editor.current();
        self.keys.reset();
        self.editor.pasting = false;
        self.editor.after_cr = false;
        self.editor.discard();
        line
    }
}

impl Editor {
    /// The current line, unless there is nothing worth reporting.
    fn current(&self) -> Option<Line> {
        let worth = !self.line.is_empty() || self.notes.recalled || self.notes.uncertain;
        worth.then(|| Line {
            text: self.line.text(),
            notes: self.notes,
        })
    }

    /// Forgets the current line.
    fn discard(&mut self) {
        self.line.clear();
        self.notes = LineNotes {
            pasted: self.pasting,
            ..LineNotes::default()
        };
        self.quoted = false;
    }

    /// Applies one key; the line it ended, if it ended one worth reporting.
    fn key(&mut self, key: Key) -> Option<Line> {
        let after_cr = std::mem::take(&mut self.after_cr);
        if std::mem::take(&mut self.quoted) {
            match key {
                Key::Char(c) => self.insert(c),
                Key::Control(b) => self.insert(char::from(b)),
                _ => self.notes.uncertain = true,
            }
            return None;
        }
        match key {
            Key::Char(c) => self.insert(c),
            Key::Control(b'\r') => {
                self.after_cr = true;
                return self.enter();
            }
            Key::Control(b'\n') if after_cr => {}
            Key::Control(b'\n') => return self.enter(),
            Key::Control(b'\t') => {
                self.insert('\t');
                self.notes.completed |= !self.pasting;
            }
            Key::PasteStart => {
                self.pasting = true;
                self.notes.pasted = true;
            }
            Key::PasteEnd => self.pasting = false,
            // Within a paste, other keys are text the terminal would not send: dropped.
            _ if self.pasting => {}
            Key::Control(b) => self.control(b),
            Key::Meta(b) => self.meta(b),
            Key::Csi {
                first,
                second,
                last,
            } => self.csi(first, second, last),
            Key::Ss3(b) => self.ss3(b),
        }
        None
    }

    /// The line is entered: reported (unless empty) and the next one starts.
    fn enter(&mut self) -> Option<Line> {
        let line = self.current();
        self.discard();
        line
    }

    fn insert(&mut self, c: char) {
        if !self.line.insert(c) {
            self.notes.truncated = true;
        }
    }

    fn yank(&mut self) {
        let killed = std::mem::take(&mut self.killed);
        for c in killed.chars() {
            self.insert(c);
        }
        self.killed = killed;
    }

    /// A kill: what went is kept for Ctrl-Y (nothing killed keeps the previous).
    fn killed(&mut self, gone: String) {
        if !gone.is_empty() {
            self.killed = gone;
        }
    }

    /// History moved: the shell's line is one the editor never saw.
    fn recall(&mut self) {
        self.line.clear();
        self.notes.recalled = true;
    }

    fn control(&mut self, b: u8) {
        match b {
            0x01 => self.line.home(),
            0x02 => self.line.left(),
            0x03 => self.discard(),
            0x04 => self.line.delete(),
            0x05 => self.line.end(),
            0x06 => self.line.right(),
            0x08 | 0x7f => self.line.backspace(),
            0x0b => {
                let gone = self.line.kill_to_end();
                self.killed(gone);
            }
            0x0e | 0x10 | 0x12 => self.recall(),
            0x14 => self.line.transpose(),
            0x15 => {
                let gone = self.line.kill_to_start();
                self.killed(gone);
            }
            0x16 => self.quoted = true,
            0x17 => {
                let gone = self.line.kill_word_left(Word::Blank);
                self.killed(gone);
            }
            0x19 => self.yank(),
            // Ctrl-@, Ctrl-G (abort), Ctrl-L (clear screen), Ctrl-Q/S (flow control),
            // Ctrl-Z and Ctrl-\ (signals): the line stays as it is.
            0x00 | 0x07 | 0x0c | 0x11 | 0x13 | 0x1a | 0x1c => {}
            // Ctrl-O, Ctrl-X prefixes, Ctrl-] search, Ctrl-_ undo...
            _ => self.notes.uncertain = true,
        }
    }

    fn meta(&mut self, b: u8) {
        match b {
            b'b' | b'B' => self.line.word_left(Word::Alnum),
            b'f' | b'F' => self.line.word_right(Word::Alnum),
            b'd' | b'D' => {
                let gone = self.line.kill_word_right(Word::Alnum);
                self.killed(gone);
            }
            0x7f | 0x08 => {
                let gone = self.line.kill_word_left(Word::Alnum);
                self.killed(gone);
            }
            b'.' | b'_' | b'<' | b'>' => {
                // Last argument or history ends: text the editor never saw, at the cursor.
                self.notes.recalled = true;
            }
            _ => self.notes.uncertain = true,
        }
    }

    fn csi(&mut self, first: u16, second: u16, last: u8) {
        // Ctrl (5) or Alt (3) with an arrow moves by words.
        let by_word = matches!(second, 3 | 5);
        match (first, last) {
            (_, b'A') | (_, b'B') => self.recall(),
            (_, b'C') if by_word => self.line.word_right(Word::Alnum),
            (_, b'D') if by_word => self.line.word_left(Word::Alnum),
            (_, b'C') => self.line.right(),
            (_, b'D') => self.line.left(),
            (_, b'H') | (1 | 7, b'~') => self.line.home(),
            (_, b'F') | (4 | 8, b'~') => self.line.end(),
            (3, b'~') => self.line.delete(),
            // Shift-Tab: completion backwards.
            (_, b'Z') => self.notes.completed = true,
            // Insert toggles overwrite mode, which the editor does not follow.
            (2, b'~') => self.notes.uncertain = true,
            // Function keys, Page Up/Down, focus reports: no edit.
            _ => {}
        }
    }

    fn ss3(&mut self, b: u8) {
        match b {
            b'A' | b'B' => self.recall(),
            b'C' => self.line.right(),
            b'D' => self.line.left(),
            b'H' => self.line.home(),
            b'F' => self.line.end(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
