//! `Session::terminal`: events reach the session's recording sink with their channel and
//! stamp; what the evidence may not hold is masked (input, an exec's command, and the output
//! of an identity exempt from masking, which the wire forwarded in clear).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use gatehouse_core::events::{TerminalEvent, TerminalEventKind, TerminalStart};
use gatehouse_core::mask::{MaskPolicy, MaskSpec};
use gatehouse_core::testing::{connection, open, MemoryStore};
use gatehouse_core::{Gateway, Protocol, Session};

async fn session(groups: &[&str]) -> (Session, Arc<MemoryStore>) {
    let memory = Arc::new(MemoryStore::accepting_any_token("t", groups));
    let masks = MaskPolicy::new(
        vec![MaskSpec {
            name: "pan".into(),
            detect: Some("pan".into()),
            regex: None,
            columns: vec![],
            style: "keep-last-4".into(),
            exempt_groups: vec!["fraud".into()],
        }],
        vec![7; 32],
    )
    .unwrap();
    let mut parts = memory.parts(connection("web1", Protocol::Ssh, &["ops", "fraud"]));
    parts.masks = masks;
    let gateway = Gateway::new(parts).unwrap();
    let session = open(&gateway, "web1", Protocol::Ssh).await;
    (session, memory)
}

const PAN: &[u8] = b"card 4111111111111111\r\n";

fn data(event: &TerminalEvent) -> &[u8] {
    match &event.kind {
        TerminalEventKind::Output(d) | TerminalEventKind::Input(d) => d,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn events_reach_the_sink_with_input_and_commands_masked() {
    let (session, memory) = session(&["ops"]).await;
    let at = Instant::now();
    session.terminal(TerminalEvent {
        channel: 4,
        at,
        kind: TerminalEventKind::Start(TerminalStart {
            width: 0,
            height: 0,
            term: None,
            command: Some("grep 4111111111111111 /var/log/pay".into()),
        }),
    });
    session.terminal(TerminalEvent::input(4, Bytes::from_static(PAN)));
    // Output is the wire's to mask for a masked identity: handed over as it came.
    session.terminal(TerminalEvent::output(
        4,
        Bytes::from_static(b"already ****1111"),
    ));
    session.terminal(TerminalEvent::end(4, Some("exit-status 1".into())));
    let events = memory.terminal.lock().unwrap();
    assert_eq!(events.len(), 4);
    assert!(events.iter().all(|e| e.channel == 4));
    assert_eq!(events[0].at, at);
    match &events[0].kind {
        TerminalEventKind::Start(s) => {
            let command = s.command.as_deref().unwrap();
            assert!(
                !command.contains("4111111111111111") && command.contains("1111"),
                "{command}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(!String::from_utf8_lossy(data(&events[1])).contains("4111111111111111"));
    assert_eq!(data(&events[2]), b"already ****1111");
}

#[tokio::test]
async fn an_exempt_identitys_output_is_masked_for_the_recording() {
    let (session, memory) = session(&["fraud"]).await;
    assert!(
        session.masker().is_empty(),
        "exempt: the wire forwards in clear"
    );
    session.terminal(TerminalEvent::output(0, Bytes::from_static(PAN)));
    session.terminal(TerminalEvent::output(
        0,
        Bytes::from_static(b"\xff not text"),
    ));
    let events = memory.terminal.lock().unwrap();
    let first = String::from_utf8_lossy(data(&events[0])).into_owned();
    assert!(
        !first.contains("4111111111111111") && first.ends_with("1111\r\n"),
        "{first}"
    );
    assert_eq!(data(&events[1]), b"\xff not text");
}

#[tokio::test]
async fn an_uploaded_copy_is_kept_as_masked_text_and_a_binary_one_not_at_all() {
    use gatehouse_core::files::{FileCrossed, FileDirection};
    use gatehouse_core::store::RecordingEvent;
    let (session, memory) = session(&["ops"]).await;
    let file = |copy: &[u8]| FileCrossed {
        direction: FileDirection::Upload,
        path: "/tmp/x".into(),
        bytes: copy.len() as u64,
        sha256: Some("ab".into()),
        copy: Some(copy.to_vec()),
        note: None,
    };
    session.record_file(1, file(b"echo 4111111111111111\n"));
    session.record_file(2, file(b"\xff\xfe4111111111111111"));
    let recorded = memory.recorded.lock().unwrap();
    let kept: Vec<_> = recorded
        .iter()
        .filter_map(|e| match e {
            RecordingEvent::File { content, note, .. } => Some((content.clone(), note.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(kept[0].0.as_deref(), Some("echo ************1111\n"));
    assert_eq!(kept[0].1, None);
    assert_eq!(kept[1].0, None);
    assert!(kept[1]
        .1
        .as_deref()
        .is_some_and(|n| n.starts_with("binary")));
}
