//! The tracker on its own: sequences of client messages and server answers in, audit outcomes
//! out. The store behind the session is the core's in-memory double (the store is not what this
//! crate proxies; PostgreSQL itself is exercised end to end in crates/gatehouse).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use gatehouse_core::testing::{connection, open, MemoryStore};
use gatehouse_core::{Command, Gateway, Outcome, Protocol, Session};
use gatehouse_postgres::messages::ServerNotice;
use gatehouse_postgres::tracker::{Pending, Portal, Running, Statement, Tracker};

async fn session() -> (Session, Arc<MemoryStore>) {
    session_with_rules(gatehouse_core::Rules::default()).await
}

async fn session_with_rules(rules: gatehouse_core::Rules) -> (Session, Arc<MemoryStore>) {
    let memory = Arc::new(MemoryStore::accepting_any_token("t", &["g"]));
    let mut parts = memory.parts(connection("db", Protocol::Postgres, &["g"]));
    parts.rules = rules;
    let gateway = Gateway::new(parts).unwrap();
    (open(&gateway, "db", Protocol::Postgres).await, memory)
}

async fn running(session: &Session, text: &str, simple: bool) -> Pending {
    let admitted = session.admit(Command::new(text)).wait().await.unwrap();
    Pending::Command(Running::new(admitted, simple, None))
}

/// What the relay does once it has written the answers: finishes the commands they ended.
fn finish_answered(t: &mut Tracker, s: &Session) {
    let mut ended = Vec::new();
    t.take_ended(&mut ended);
    for (admitted, end) in ended {
        s.finish(admitted, end);
    }
}

fn notice(code: &str) -> ServerNotice {
    ServerNotice {
        severity: "ERROR".into(),
        code: code.into(),
        message: format!("failed {code}"),
    }
}

fn statement(text: &str) -> Statement {
    Statement {
        text: Arc::from(text),
        param_types: vec![],
        fields: None,
    }
}

#[tokio::test]
async fn a_refused_reparse_is_undone_and_the_old_statement_stays() {
    let (s, _) = session().await;
    let mut t = Tracker::default();
    let p = t.parse("s1", statement("DELETE FROM t"));
    t.push(p);
    let sync = t.sync();
    t.push(sync);
    t.parse_complete();
    t.ready(b'I');
    let p = t.parse("s1", statement("SELECT 1"));
    t.push(p);
    let sync = t.sync();
    t.push(sync);
    assert_eq!(
        &*t.statement("s1").unwrap().text,
        "SELECT 1",
        "optimistic within the pipeline"
    );
    assert!(t.error(&s, notice("42P05"), 0).is_none());
    t.ready(b'I');
    assert_eq!(
        &*t.statement("s1").unwrap().text,
        "DELETE FROM t",
        "undone at ReadyForQuery"
    );
}

#[tokio::test]
async fn pipelined_executes_get_their_own_answers_and_skipped_ones_are_not_run() {
    let (s, memory) = session().await;
    let mut t = Tracker::default();
    for text in ["SELECT 1", "SELECT 2", "SELECT 3"] {
        let b = t.bind(
            "",
            Portal {
                text: Arc::from(text),
                params: vec![],
                shape: Default::default(),
            },
        );
        t.push(b);
        let c = running(&s, text, false).await;
        t.push(c);
    }
    let sync = t.sync();
    t.push(sync);
    t.bind_complete();
    t.complete("SELECT 1", 1);
    t.bind_complete();
    assert!(t.error(&s, notice("22012"), 0).is_none());
    t.ready(b'I');
    finish_answered(&mut t, &s);
    let finished = memory.finished.lock().unwrap();
    let outcomes: Vec<&Outcome> = finished.iter().map(|c| &c.outcome).collect();
    assert_eq!(outcomes.len(), 3);
    assert!(matches!(outcomes[0], Outcome::Completed { tag } if tag == "SELECT 1"));
    assert!(matches!(outcomes[1], Outcome::Failed { code, .. } if code == "22012"));
    assert!(matches!(outcomes[2], Outcome::NotExecuted { .. }));
    assert!(t.portal("").is_none(), "portals end with the transaction");
}

#[tokio::test]
async fn a_failed_bind_fails_the_execute_that_needed_it() {
    let (s, memory) = session().await;
    let mut t = Tracker::default();
    let b = t.bind(
        "",
        Portal {
            text: Arc::from("SELECT 1 / $1"),
            params: vec![Some("0".into())],
            shape: Default::default(),
        },
    );
    t.push(b);
    let c = running(&s, "SELECT 1 / $1", false).await;
    t.push(c);
    let sync = t.sync();
    t.push(sync);
    assert!(t.error(&s, notice("22012"), 0).is_none());
    t.ready(b'I');
    finish_answered(&mut t, &s);
    let finished = memory.finished.lock().unwrap();
    assert!(matches!(&finished[0].outcome, Outcome::Failed { code, .. } if code == "22012"));
    assert!(memory.notes()[0].contains("Bind of portal \"\" failed"));
}

#[tokio::test]
async fn syncs_sent_during_an_extended_copy_in_are_not_waited_for() {
    let (s, memory) = session().await;
    let mut t = Tracker::default();
    let c = running(&s, "COPY t FROM STDIN", false).await;
    t.push(c);
    let sync = t.sync();
    t.push(sync); // sent with the Execute, ignored by the server in copy-in mode
    t.copy_in();
    t.push(Pending::CopyEnd);
    let sync = t.sync();
    t.push(sync);
    t.complete("COPY 3", 0);
    t.ready(b'I');
    let q = running(&s, "SELECT 'next'", true).await;
    t.push(q);
    let sync = t.sync();
    t.push(sync);
    t.complete("SELECT 1", 1);
    t.ready(b'I');
    finish_answered(&mut t, &s);
    let finished = memory.finished.lock().unwrap();
    assert_eq!(
        finished.len(),
        2,
        "the simple query closed at its own ReadyForQuery"
    );
    assert_eq!(finished[0].rows_affected, Some(3));
    assert!(matches!(&finished[1].outcome, Outcome::Completed { tag } if tag == "SELECT 1"));
}

#[tokio::test]
async fn a_review_whose_request_cannot_be_stored_refuses_the_command() {
    let rule: gatehouse_core::RuleSpec = toml::from_str(
        "name = \"wipes\"\nwhen = { class = [\"delete-without-where\"] }\n\
         action = \"review\"\napprovers = [\"dba\"]",
    )
    .unwrap();
    let (s, _) = session_with_rules(gatehouse_core::Rules::new(vec![rule]).unwrap()).await;
    // The desk of this gateway cannot store anything (NoApprovals): fail closed.
    let mut told = false;
    let refused = s
        .admit(gatehouse_core::Command::new("DELETE FROM t"))
        .wait_with(|_| told = true)
        .await
        .unwrap_err();
    assert!(
        !told,
        "the client is told a request id only once it is stored"
    );
    assert!(refused.by_policy());
    assert!(
        refused.message.contains("could not be stored"),
        "{}",
        refused.message
    );
    assert!(s
        .admit(gatehouse_core::Command::new("DELETE FROM t WHERE id = 1"))
        .wait()
        .await
        .is_ok());
}
