//! `GET /v1/approvals/events`: the approvals inbox, live (server-sent events). Each `inbox`
//! event is the whole inbox as the caller may see it: the pending requests and the latest
//! decided ones, each saying whether this caller may decide it. A new one is sent when the
//! desk announces a change on this instance, and at least every few seconds when the inbox
//! read again differs (a request made or decided on another instance); a keep-alive comment
//! holds idle connections open through proxies.
//!
//! The caller's token is authenticated again on every refresh: revoking it, or its JWT
//! expiring, ends the stream.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use gatehouse_audit::{ApprovalEvent, ApprovalRow};
use gatehouse_core::approval::check_approver;
use serde::Serialize;
use tokio::sync::broadcast;

use super::auth::Caller;
use super::{blocking, AdminState, ApiError};

/// How often the inbox is read again without an announcement.
const REFRESH: Duration = Duration::from_secs(2);

/// How many decided requests the inbox shows (older ones page through `/v1/approvals`).
pub const DECIDED_SHOWN: u32 = 20;

/// One request as the caller sees it.
#[derive(Debug, Serialize)]
pub struct InboxRow {
    /// The request.
    #[serde(flatten)]
    pub row: ApprovalRow,
    /// Whether this caller may approve or deny it (an approver of its rule, not its requester).
    pub can_decide: bool,
}

/// The inbox.
#[derive(Debug, Serialize)]
pub struct Inbox {
    /// Waiting for a decision, newest first.
    pub pending: Vec<InboxRow>,
    /// The latest decided (or expired) ones, newest first.
    pub decided: Vec<InboxRow>,
}

/// The rows `caller` may see: all of them for an administrator, else those their groups may
/// decide (or that they asked for themselves).
pub fn visible(state: &AdminState, caller: &Caller, rows: Vec<ApprovalRow>) -> Vec<InboxRow> {
    let admin = caller.is_admin(state);
    rows.into_iter()
        .filter(|r| {
            admin
                || r.identity == caller.0.name
                || r.approvers.iter().any(|g| caller.0.groups.contains(g))
        })
        .map(|row| InboxRow {
            can_decide: row.state == "pending"
                && check_approver(&row.id, &row.identity, &row.approvers, &caller.0).is_ok(),
            row,
        })
        .collect()
}

async fn read(state: &AdminState, caller: &Caller) -> Result<Inbox, ApiError> {
    let desk = state.approvals.clone();
    let (pending, recent) = blocking(move || {
        let pending = desk.page(true, 1000, 0)?;
        let recent = desk.page(false, DECIDED_SHOWN + pending.len() as u32, 0)?;
        Ok((pending, recent))
    })
    .await?;
    let decided = recent
        .into_iter()
        .filter(|r| r.state != "pending")
        .take(DECIDED_SHOWN as usize)
        .collect();
    Ok(Inbox {
        pending: visible(state, caller, pending),
        decided: visible(state, caller, decided),
    })
}

struct Follow {
    state: AdminState,
    caller: Caller,
    events: broadcast::Receiver<ApprovalEvent>,
    last: Option<String>,
}

impl Follow {
    /// The next inbox that differs from the last one sent; `None` ends the stream.
    async fn next(&mut self) -> Option<String> {
        loop {
            if self.last.is_some() {
                // An event, a lag (read again anyway), or the refresh: read again.
                let woken = tokio::time::timeout(REFRESH, self.events.recv()).await;
                if let Ok(Err(broadcast::error::RecvError::Closed)) = woken {
                    return None;
                }
                // A burst of announcements is one read.
                while self.events.try_recv().is_ok() {}
                if self
                    .state
                    .gateway
                    .authenticate(&self.caller.1)
                    .await
                    .is_err()
                {
                    return None;
                }
            }
            let inbox = match read(&self.state, &self.caller).await {
                Ok(inbox) => inbox,
                Err(e) => {
                    tracing::warn!(error = %e, "console inbox: reading approvals failed");
                    self.last.get_or_insert_with(String::new);
                    continue;
                }
            };
            let json = serde_json::to_string(&inbox).unwrap_or_default();
            if self.last.as_deref() != Some(json.as_str()) {
                self.last = Some(json.clone());
                return Some(json);
            }
        }
    }
}

pub(super) async fn events(
    State(state): State<AdminState>,
    caller: Caller,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    caller.require_approver(&state)?;
    let follow = Follow {
        events: state.approvals.subscribe(),
        state,
        caller,
        last: None,
    };
    let stream = futures_util::stream::unfold(follow, |mut follow| async move {
        let json = follow.next().await?;
        Some((Ok(Event::default().event("inbox").data(json)), follow))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
