//! Following a command's answer (COM_QUERY, COM_STMT_EXECUTE): OK, ERR, or result sets —
//! column count, column definitions, (EOF), rows, EOF/OK — several of them while the server
//! says more results follow. The relay feeds it every message the server sends for the
//! command; it says what each one is, and when the answer is complete, with its outcome.

use crate::codec::Reader;
use crate::error::MysqlError;
use crate::handshake::caps;
use crate::packets::{
    eof_status, is_eof, Err, Ok, SERVER_MORE_RESULTS_EXISTS, SERVER_STATUS_CURSOR_EXISTS,
};

/// What a message of the answer was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The column count of a result set.
    ColumnCount(u64),
    /// Column definition `index` of the current result set.
    Column(u64),
    /// The EOF after the column definitions (without `DEPRECATE_EOF`).
    ColumnsEnd,
    /// A row of the current result set.
    Row,
    /// The end of a result set; another follows.
    ResultEnd,
    /// `LOAD DATA LOCAL INFILE`: the server asks for a file (the name is the payload's rest).
    LocalInfile,
    /// The answer is complete.
    Done(Outcome),
}

/// How the command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Completed: rows returned, rows affected (summed over statements), result sets.
    Ok {
        /// Rows returned.
        rows: u64,
        /// Rows affected.
        affected: u64,
        /// Result sets returned.
        sets: u64,
    },
    /// Failed (possibly after some statements of a multi-statement text completed).
    Failed(Err),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Columns { left: u64, index: u64 },
    ColumnsEof,
    Rows,
}

/// The answer to one command.
#[derive(Debug, Clone)]
pub struct Response {
    capabilities: u32,
    state: State,
    rows: u64,
    affected: u64,
    sets: u64,
    status: Option<u16>,
}

impl Response {
    /// The answer of a session with these (agreed) capabilities.
    pub fn new(capabilities: u32) -> Self {
        Self {
            capabilities,
            state: State::Start,
            rows: 0,
            affected: 0,
            sets: 0,
            status: None,
        }
    }

    /// The status flags of the last OK or EOF of the answer (how the server now lexes text:
    /// `NO_BACKSLASH_ESCAPES` is among them).
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    fn done_or_next(&mut self, status: u16) -> Step {
        self.status = Some(status);
        if status & SERVER_MORE_RESULTS_EXISTS != 0 {
            self.state = State::Start;
            Step::ResultEnd
        } else {
            Step::Done(Outcome::Ok {
                rows: self.rows,
                affected: self.affected,
                sets: self.sets,
            })
        }
    }

    /// The answer to a COM_STMT_FETCH: rows of an open cursor, then an EOF.
    pub fn fetch(capabilities: u32) -> Self {
        Self {
            state: State::Rows,
            ..Self::new(capabilities)
        }
    }

    /// Takes the next message of the answer.
    pub fn feed(&mut self, payload: &[u8]) -> Result<Step, MysqlError> {
        // No column definition or row begins with 0xFF (not a valid length), so 0xFF is an
        // ERR wherever it comes: the statement failed, and the answer ends with it.
        if payload.first() == Some(&0xFF) {
            return Ok(Step::Done(Outcome::Failed(Err::decode(payload)?)));
        }
        match self.state {
            State::Start => match payload.first() {
                Some(0x00) => {
                    let ok = Ok::decode(payload)?;
                    self.affected += ok.affected_rows;
                    Ok(self.done_or_next(ok.status))
                }
                Some(0xFB) => Ok(Step::LocalInfile),
                Some(_) => {
                    let n = Reader::new(payload)
                        .lenenc_int()?
                        .ok_or(MysqlError::Malformed("NULL column count"))?;
                    if n == 0 {
                        return Err(MysqlError::Malformed("a result set of no columns"));
                    }
                    self.sets += 1;
                    self.state = State::Columns { left: n, index: 0 };
                    Ok(Step::ColumnCount(n))
                }
                None => Err(MysqlError::Malformed("empty packet")),
            },
            State::Columns { left, index } => {
                self.state = match left - 1 {
                    0 if self.capabilities & caps::DEPRECATE_EOF != 0 => State::Rows,
                    0 => State::ColumnsEof,
                    rest => State::Columns {
                        left: rest,
                        index: index + 1,
                    },
                };
                Ok(Step::Column(index))
            }
            State::ColumnsEof => {
                if !is_eof(payload, 0) {
                    return Err(MysqlError::Malformed("no EOF after the column definitions"));
                }
                // An execute that opened a cursor ends here: its rows come with COM_STMT_FETCH.
                if eof_status(payload, 0)? & SERVER_STATUS_CURSOR_EXISTS != 0 {
                    self.state = State::Start;
                    return Ok(Step::Done(Outcome::Ok {
                        rows: 0,
                        affected: 0,
                        sets: self.sets,
                    }));
                }
                self.state = State::Rows;
                Ok(Step::ColumnsEnd)
            }
            State::Rows => {
                if is_eof(payload, self.capabilities) {
                    let status = eof_status(payload, self.capabilities)?;
                    return Ok(self.done_or_next(status));
                }
                self.rows += 1;
                Ok(Step::Row)
            }
        }
    }
}
