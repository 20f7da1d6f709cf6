//! The line being typed, with a cursor: a gap buffer, so typing, deleting and moving at the
//! cursor cost the same wherever it is, and a long paste stays linear.

/// A line of at most `max_bytes` bytes of UTF-8, and a cursor in it.
#[derive(Debug, Clone)]
pub(super) struct LineBuffer {
    /// The characters before the cursor, in order.
    before: Vec<char>,
    /// The characters after the cursor, last first.
    after: Vec<char>,
    /// UTF-8 length of the whole line.
    bytes: usize,
    /// Bound on `bytes`.
    max_bytes: usize,
}

/// What a word is for a word motion.
#[derive(Debug, Clone, Copy)]
pub(super) enum Word {
    /// Letters and digits (readline's Alt-b, Alt-f, Alt-d, Alt-Backspace).
    Alnum,
    /// Anything but white space (readline's Ctrl-W).
    Blank,
}

impl Word {
    fn contains(self, c: char) -> bool {
        match self {
            Self::Alnum => c.is_alphanumeric(),
            Self::Blank => !c.is_whitespace(),
        }
    }
}

impl LineBuffer {
    /// An empty line bounded to `max_bytes`.
    pub(super) fn new(max_bytes: usize) -> Self {
        Self {
            before: Vec::new(),
            after: Vec::new(),
            bytes: 0,
            max_bytes,
        }
    }

    /// Whether the line is empty.
    pub(super) fn is_empty(&self) -> bool {
        self.before.is_empty() && self.after.is_empty()
    }

    /// The line's text.
    pub(super) fn text(&self) -> String {
        let mut s = String::with_capacity(self.bytes);
        s.extend(self.before.iter());
        s.extend(self.after.iter().rev());
        s
    }

    /// Empties the line.
    pub(super) fn clear(&mut self) {
        self.before.clear();
        self.after.clear();
        self.bytes = 0;
    }

    /// Inserts `c` at the cursor; false (and nothing inserted) if the line is full.
    pub(super) fn insert(&mut self, c: char) -> bool {
        if self.bytes + c.len_utf8() > self.max_bytes {
            return false;
        }
        self.bytes += c.len_utf8();
        self.before.push(c);
        true
    }

    /// Deletes the character before the cursor.
    pub(super) fn backspace(&mut self) {
        if let Some(c) = self.before.pop() {
            self.bytes -= c.len_utf8();
        }
    }

    /// Deletes the character at the cursor.
    pub(super) fn delete(&mut self) {
        if let Some(c) = self.after.pop() {
            self.bytes -= c.len_utf8();
        }
    }

    /// Moves the cursor one character left.
    pub(super) fn left(&mut self) {
        if let Some(c) = self.before.pop() {
            self.after.push(c);
        }
    }

    /// Moves the cursor one character right.
    pub(super) fn right(&mut self) {
        if let Some(c) = self.after.pop() {
            self.before.push(c);
        }
    }

    /// Moves the cursor to the start of the line.
    pub(super) fn home(&mut self) {
        while !self.before.is_empty() {
            self.left();
        }
    }

    /// Moves the cursor to the end of the line.
    pub(super) fn end(&mut self) {
        while !self.after.is_empty() {
            self.right();
        }
    }

    /// Moves the cursor left to the start of the word before it.
    pub(super) fn word_left(&mut self, word: Word) {
        while self.before.last().is_some_and(|&c| !word.contains(c)) {
            self.left();
        }
        while self.before.last().is_some_and(|&c| word.contains(c)) {
            self.left();
        }
    }

    /// Moves the cursor right to the end of the word after it.
    pub(super) fn word_right(&mut self, word: Word) {
        while self.after.last().is_some_and(|&c| !word.contains(c)) {
            self.right();
        }
        while self.after.last().is_some_and(|&c| word.contains(c)) {
            self.right();
        }
    }

    /// Deletes from the start of the word before the cursor to the cursor; returns what went.
    pub(super) fn kill_word_left(&mut self, word: Word) -> String {
        let cursor = self.before.len();
        self.word_left(word);
        let start = self.before.len();
        for _ in start..cursor {
            self.right();
        }
        self.kill_left_to(start)
    }

    /// Deletes from the cursor to the end of the word after it; returns what went.
    pub(super) fn kill_word_right(&mut self, word: Word) -> String {
        let cursor = self.before.len();
        self.word_right(word);
        let end = self.before.len();
        for _ in cursor..end {
            self.left();
        }
        self.kill_right(end - cursor)
    }

    /// Deletes from the start of the line to the cursor; returns what went.
    pub(super) fn kill_to_start(&mut self) -> String {
        self.kill_left_to(0)
    }

    /// Deletes from the cursor to the end of the line; returns what went.
    pub(super) fn kill_to_end(&mut self) -> String {
        self.kill_right(self.after.len())
    }

    /// Swaps the character before the cursor with the one at it and moves past both; at the end
    /// of the line, swaps the last two (readline's Ctrl-T).
    pub(super) fn transpose(&mut self) {
        if self.after.is_empty() {
            let n = self.before.len();
            if n >= 2 {
                self.before.swap(n - 2, n - 1);
            }
        } else if let (Some(x), Some(y)) = (self.before.pop(), self.after.pop()) {
            self.before.push(y);
            self.before.push(x);
        }
    }

    /// Deletes the characters before the cursor from index `start`.
    fn kill_left_to(&mut self, start: usize) -> String {
        let gone: String = self.before.drain(start.min(self.before.len())..).collect();
        self.bytes -= gone.len();
        gone
    }

    /// Deletes `n` characters from the cursor on.
    fn kill_right(&mut self, n: usize) -> String {
        let keep = self.after.len().saturating_sub(n);
        let gone: String = self.after.drain(keep..).rev().collect();
        self.bytes -= gone.len();
        gone
    }
}
