//! A terminal's bytes: keystrokes through the shell line editor (escape sequences, editing
//! keys, pastes), and output through the streaming masker, in chunks whose boundaries come
//! from the data. Whatever the masker holds back is bounded and flushed in the end.
#![no_main]

use bytes::Bytes;
use gatehouse_ssh::output_mask::{OutputMasker, MAX_HOLD};
use gatehouse_ssh::shell_lines::LineEditor;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let masker = gatehouse_fuzz::masker();
    let mut editor = LineEditor::new();
    let mut output = OutputMasker::new(masker, "output");
    let mut out_len = 0usize;
    let mut rest = data;
    while !rest.is_empty() {
        let n = usize::from(rest[0] % 32) + 1;
        let (chunk, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        for line in editor.feed(chunk) {
            let _ = line.line().audit_text();
        }
        out_len += output.push(Bytes::copy_from_slice(chunk)).len();
        assert!(
            output.held_len() <= MAX_HOLD,
            "the masker holds more than it may"
        );
    }
    let _ = editor.flush();
    out_len += output.flush().len();
    assert!(!output.is_holding());
    let _ = out_len;
});
