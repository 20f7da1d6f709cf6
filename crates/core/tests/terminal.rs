//! `Session::terminal`: events reach the session's recording sink with their channel and
//! stamp; what the evidence may not hold is masked (input, an exec's command, and the output
//! of an identity exempt from masking, which the wire forwarded in clear).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use gatehouse_core::mask::{MaskPolicy, MaskSpec};
use gatehouse_core::store::{
    AuditSink, Receipt, RecordingEvent, RecordingSink, TerminalEvent, TerminalEventKind,
    TerminalStart, TokenRegistry,
};
use gatehouse_core::{
    CommandCompletion, CommandRecord, ConnectionSpec, Gateway, GatewayParts, Identity, OpenRequest,
    Protocol, Session, SessionEnd, SessionId, SessionInfo, StoreError, TokenHash, TokenId,
    TokenRecord, UpstreamTls,
};

/// A store double: the sink is what is tested, not the store.
struct Memory {
    groups: Vec<String>,
    terminal: Mutex<Vec<TerminalEvent>>,
}

fn done() -> Receipt {
    let (tx, rx) = Receipt::channel();
    let _ = tx.send(Ok(()));
    rx
}

impl AuditSink for Memory {
    fn session_opened(&self, _: &SessionInfo) -> Receipt {
        done()
    }
    fn command_admitted(&self, _: CommandRecord) -> Receipt {
        done()
    }
    fn command_finished(&self, _: CommandCompletion) {}
    fn session_closed(&self, _: &SessionEnd) -> Receipt {
        done()
    }
}

impl RecordingSink for Memory {
    fn append(&self, _: &SessionId, _: RecordingEvent) {}
    fn close(&self, _: &SessionId) {}
    fn terminal(&self, _: &SessionId, event: TerminalEvent) {
        self.terminal.lock().unwrap().push(event);
    }
}

#[async_trait]
impl TokenRegistry for Memory {
    async fn find_by_hash(&self, _: &TokenHash) -> Result<Option<TokenRecord>, StoreError> {
        Ok(Some(TokenRecord {
            id: TokenId("tok_test".into()),
            identity: Identity {
                name: "t".into(),
                groups: self.groups.clone(),
            },
            connections: vec![],
            created_at: SystemTime::now(),
            expires_at: None,
            revoked_at: None,
            created_by: "test".into(),
        }))
    }
    async fn revoked_since(&self, _: SystemTime) -> Result<Vec<(TokenId, SystemTime)>, StoreError> {
        Ok(vec![])
    }
}

async fn session(groups: &[&str]) -> (Session, Arc<Memory>) {
    let memory = Arc::new(Memory {
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        terminal: Mutex::new(Vec::new()),
    });
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
    let gateway = Gateway::new(GatewayParts {
        connections: vec![ConnectionSpec {
            name: "web1".into(),
            protocol: Protocol::Ssh,
            address: "127.0.0.1:1".into(),
            database: None,
            username: "u".into(),
            password: None,
            groups: vec!["ops".into(), "fraud".into()],
            tls: UpstreamTls::Disable,
            tls_ca: None,
            local_infile: false,
            startup_options: false,
            private_key: None,
            host_key: None,
            port_forwarding: false,
            upload_copy_max_bytes: 0,
        }],
        tokens: memory.clone(),
        audit: memory.clone(),
        recordings: memory.clone(),
        rules: Default::default(),
        approvals: Arc::new(gatehouse_core::approval::NoApprovals),
        oidc: Default::default(),
        masks,
    })
    .unwrap();
    let session = gateway
        .open(OpenRequest {
            connection: "web1",
            credential: gatehouse_core::Credential::Token("gh_x"),
            claimed_user: "web1",
            settings: &[],
            client_addr: "127.0.0.1:9".parse().unwrap(),
            protocol: Protocol::Ssh,
        })
        .await
        .unwrap();
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
