//! Keystroke bytes to keys: UTF-8 characters, control keys, escape sequences (CSI, SS3, Alt),
//! bracketed paste markers. A key may span feeds; the partial key waits in the decoder.

/// Most parameter bytes of an escape sequence looked at; the rest are consumed unread.
const MAX_PARAM_BYTES: u8 = 32;

/// One key, as the line editor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Key {
    /// A printable character (invalid UTF-8 arrives as U+FFFD).
    Char(char),
    /// A C0 control byte other than ESC, or DEL (0x7f).
    Control(u8),
    /// `ESC [ params final`: its first two numeric parameters (0 when absent) and final byte.
    Csi {
        /// First parameter (`3` in `ESC [ 3 ~`).
        first: u16,
        /// Second parameter, the modifier in `ESC [ 1 ; 5 D`.
        second: u16,
        /// The final byte.
        last: u8,
    },
    /// `ESC O x`: a cursor or keypad key in application mode.
    Ss3(u8),
    /// `ESC x`: Alt (Meta) with a key.
    Meta(u8),
    /// `ESC [ 200 ~`: a bracketed paste begins.
    PasteStart,
    /// `ESC [ 201 ~`: it ends.
    PasteEnd,
}

/// Where the decoder is within a key.
#[derive(Debug, Clone, Copy, Default)]
enum State {
    #[default]
    Ground,
    /// Inside a UTF-8 sequence: the bytes so far and how many it needs.
    Utf8 { bytes: [u8; 4], have: u8, need: u8 },
    /// After ESC.
    Escape,
    /// After `ESC [`: the parameters so far.
    Csi {
        params: [u16; 2],
        index: u8,
        read: u8,
        other: bool,
    },
    /// After `ESC O`.
    Ss3,
}

/// Turns bytes into [`Key`]s across feeds.
#[derive(Debug, Default)]
pub(super) struct Decoder {
    state: State,
}

impl Decoder {
    /// Decodes one byte; `key` is called with each key it completes (none, one, or two when a
    /// broken sequence gives way to the byte that broke it).
    pub(super) fn byte(&mut self, b: u8, key: &mut impl FnMut(Key)) {
        // One pass, or two when `b` ends a sequence it does not belong to.
        for _ in 0..2 {
            match self.step(b, key) {
                Step::Done => return,
                Step::Again => {}
            }
        }
    }

    /// Forgets any partial key (the shell ended).
    pub(super) fn reset(&mut self) {
        self.state = State::Ground;
    }

    fn step(&mut self, b: u8, key: &mut impl FnMut(Key)) -> Step {
        match self.state {
            State::Ground => return self.ground(b, key),
            State::Utf8 {
                mut bytes,
                have,
                need,
            } => {
                if !(0x80..=0xbf).contains(&b) {
                    self.state = State::Ground;
                    key(Key::Char(char::REPLACEMENT_CHARACTER));
                    return Step::Again;
                }
                if let Some(slot) = bytes.get_mut(usize::from(have)) {
                    *slot = b;
                }
                let have = have + 1;
                if have < need {
                    self.state = State::Utf8 { bytes, have, need };
                    return Step::Done;
                }
                self.state = State::Ground;
                let c = bytes
                    .get(..usize::from(have))
                    .and_then(|s| std::str::from_utf8(s).ok())
                    .and_then(|s| s.chars().next())
                    .unwrap_or(char::REPLACEMENT_CHARACTER);
                key(Key::Char(c));
            }
            State::Escape => {
                self.state = State::Ground;
                match b {
                    b'[' => {
                        self.state = State::Csi {
                            params: [0; 2],
                            index: 0,
                            read: 0,
                            other: false,
                        }
                    }
                    b'O' => self.state = State::Ss3,
                    // ESC ESC: the first was a lone Escape.
                    0x1b => self.state = State::Escape,
                    // Alt-Backspace.
                    0x7f | 0x08 => key(Key::Meta(b)),
                    0x20..=0x7e => key(Key::Meta(b)),
                    // A control key or a character after ESC: the ESC was a lone Escape key.
                    _ => return Step::Again,
                }
            }
            State::Csi {
                mut params,
                mut index,
                read,
                mut other,
            } => match b {
                0x30..=0x3f => {
                    if read < MAX_PARAM_BYTES {
                        match b {
                            b'0'..=b'9' => {
                                if let Some(p) = params.get_mut(usize::from(index)) {
                                    *p = p.saturating_mul(10).saturating_add(u16::from(b - b'0'));
                                }
                            }
                            b';' => index = index.saturating_add(1),
                            _ => other = true,
                        }
                    }
                    self.state = State::Csi {
                        params,
                        index,
                        read: read.saturating_add(1),
                        other,
                    };
                }
                // Intermediate bytes: no key the editor follows has one.
                0x20..=0x2f => {
                    self.state = State::Csi {
                        params,
                        index,
                        read: read.saturating_add(1),
                        other: true,
                    }
                }
                0x40..=0x7e => {
                    self.state = State::Ground;
                    // Private or odd sequences (mouse reports...) are no editing key.
                    if other {
                        return Step::Done;
                    }
                    let [first, second] = params;
                    key(match (first, b) {
                        (200, b'~') => Key::PasteStart,
                        (201, b'~') => Key::PasteEnd,
                        _ => Key::Csi {
                            first,
                            second,
                            last: b,
                        },
                    });
                }
                _ => {
                    self.state = State::Ground;
                    return Step::Again;
                }
            },
            State::Ss3 => {
                self.state = State::Ground;
                if (0x20..=0x7e).contains(&b) {
                    key(Key::Ss3(b));
                } else {
                    return Step::Again;
                }
            }
        }
        Step::Done
    }

    fn ground(&mut self, b: u8, key: &mut impl FnMut(Key)) -> Step {
        match b {
            0x1b => self.state = State::Escape,
            0x00..=0x1f | 0x7f => key(Key::Control(b)),
            0x20..=0x7e => key(Key::Char(char::from(b))),
            0xc2..=0xdf => self.utf8(b, 2),
            0xe0..=0xef => self.utf8(b, 3),
            0xf0..=0xf4 => self.utf8(b, 4),
            _ => key(Key::Char(char::REPLACEMENT_CHARACTER)),
        }
        Step::Done
    }

    fn utf8(&mut self, b: u8, need: u8) {
        self.state = State::Utf8 {
            bytes: [b, 0, 0, 0],
            have: 1,
            need,
        };
    }
}

/// Whether a byte was consumed or must be decoded again from the ground state.
enum Step {
    Done,
    Again,
}
