//! `GET /v1/approvals/events`: the approvals inbox, live (server-sent events). Each `inbox`
//! event is the whole inbox as the caller may see it: the pending requests and the latest
//! decided ones, each saying whether this caller may decide it.
//!
//! One reader per gateway ([`InboxFeed`]) reads the desk when it announces a change on this
//! instance, and every few seconds while anyone follows (a request made or decided on another
//! instance); every open stream filters that one reading for its caller. So the store's load
//! does not grow with the number of open consoles, and the desk's connection, which held
//! commands wait on, is never used for it. Streams are capped per identity and in all.
//!
//! A stream authenticates its caller's token again every few seconds: revoking it, or its
//! JWT expiring, ends the stream.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use gatehouse_audit::{ApprovalRow, Approvals};
use gatehouse_core::approval::check_approver;
use serde::Serialize;
use tokio::sync::{watch, Notify};

use super::auth::{signed_in, Caller};
use super::{AdminState, ApiError};

/// How often the desk is read again without an announcement, while anyone follows.
const REFRESH: Duration = Duration::from_secs(3);

/// How often a stream checks that its caller's token still holds.
const REAUTHENTICATE: Duration = Duration::from_secs(3);

/// How many decided requests the inbox shows (older ones page through `/v1/approvals`).
pub const DECIDED_SHOWN: usize = 20;

/// How many decided requests are read, for the callers who see only some of them.
const DECIDED_READ: u32 = 500;

/// The most streams one identity may follow at once (browser tabs).
const STREAMS_PER_IDENTITY: usize = 8;

/// The most streams the gateway follows at once.
const STREAMS_IN_ALL: usize = 256;

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

/// Whether `caller` may see a request: an administrator sees all, others those their groups
/// may decide, or that they asked for.
pub fn may_see(state: &AdminState, caller: &Caller, row: &ApprovalRow) -> bool {
    caller.is_admin(state)
        || row.identity == caller.0.name
        || row.approvers.iter().any(|g| caller.0.groups.contains(g))
}

/// The rows `caller` may see, each saying whether they may decide it.
pub fn visible(state: &AdminState, caller: &Caller, rows: Vec<ApprovalRow>) -> Vec<InboxRow> {
    rows.into_iter()
        .filter(|r| may_see(state, caller, r))
        .map(|row| InboxRow {
            can_decide: row.state == "pending"
                && check_approver(&row.id, &row.identity, &row.approvers, &caller.0).is_ok(),
            row,
        })
        .collect()
}

/// The desk as last read: pending requests, and the latest decided.
#[derive(Debug, Default, PartialEq)]
struct Reading {
    pending: Vec<ApprovalRow>,
    decided: Vec<ApprovalRow>,
}

/// The one reader of the desk the inbox streams share.
#[derive(Clone)]
pub struct InboxFeed {
    readings: Arc<watch::Sender<Option<Arc<Reading>>>>,
    wanted: Arc<Notify>,
    streams: Arc<Mutex<HashMap<String, usize>>>,
}

impl InboxFeed {
    /// Starts the reader (idle until a stream follows).
    pub fn start(desk: Approvals) -> Self {
        let feed = Self {
            readings: Arc::new(watch::channel(None).0),
            wanted: Arc::new(Notify::new()),
            streams: Arc::default(),
        };
        tokio::spawn(feed.clone().read_on_change(desk));
        feed
    }

    async fn read_on_change(self, desk: Approvals) {
        let mut events = desk.subscribe();
        loop {
            if self.readings.receiver_count() == 0 {
                // Nobody follows: forget the last reading, so the next stream waits for a
                // fresh one rather than being shown one from before the pause.
                self.readings.send_replace(None);
                self.wanted.notified().await;
            }
            let reader = desk.clone();
            let read = tokio::task::spawn_blocking(move || {
                let pending = reader.page(true, 1000, 0)?;
                let decided = reader
                    .page(false, DECIDED_READ + pending.len() as u32, 0)?
                    .into_iter()
                    .filter(|r| r.state != "pending")
                    .collect();
                Ok::<_, gatehouse_audit::error::AuditError>(Reading { pending, decided })
            })
            .await;
            match read {
                Ok(Ok(reading)) => {
                    self.readings.send_if_modified(|last| {
                        let changed = last.as_deref() != Some(&reading);
                        if changed {
                            *last = Some(Arc::new(reading));
                        }
                        changed
                    });
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "console inbox: reading approvals failed"),
                Err(e) => tracing::warn!(error = %e, "console inbox: reading approvals failed"),
            }
            tokio::select! {
                _ = events.recv() => {
                    // A burst of announcements is one read.
                    while events.try_recv().is_ok() {}
                }
                _ = tokio::time::sleep(REFRESH) => {}
                _ = self.wanted.notified() => {}
            }
        }
    }

    /// Counts a stream for `identity`, unless it or the gateway holds too many.
    fn admit(&self, identity: &str) -> Result<StreamSlot, ApiError> {
        let mut streams = self
            .streams
            .lock()
            .map_err(|_| ApiError::Internal("inbox streams".into()))?;
        let total: usize = streams.values().sum();
        if total >= STREAMS_IN_ALL {
            return Err(ApiError::TooMany(format!(
                "the gateway already streams the inbox to {STREAMS_IN_ALL} consoles; try again later"
            )));
        }
        let mine = streams.entry(identity.to_owned()).or_default();
        if *mine >= STREAMS_PER_IDENTITY {
            return Err(ApiError::TooMany(format!(
                "{identity} already follows the inbox in {STREAMS_PER_IDENTITY} places: close some \
                 console tabs"
            )));
        }
        *mine += 1;
        Ok(StreamSlot {
            streams: self.streams.clone(),
            identity: identity.to_owned(),
        })
    }
}

/// A stream counted against its identity's share until dropped.
struct StreamSlot {
    streams: Arc<Mutex<HashMap<String, usize>>>,
    identity: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        if let Ok(mut streams) = self.streams.lock() {
            if let Some(n) = streams.get_mut(&self.identity) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    streams.remove(&self.identity);
                }
            }
        }
    }
}

struct Follow {
    state: AdminState,
    caller: Caller,
    readings: watch::Receiver<Option<Arc<Reading>>>,
    authenticated: Instant,
    last: Option<String>,
    _slot: StreamSlot,
}

impl Follow {
    /// The next inbox that differs from the last one sent; `None` ends the stream.
    async fn next(&mut self) -> Option<String> {
        loop {
            let first = self.last.is_none() && self.readings.borrow().is_some();
            // Whether there is a reading this stream has not looked at (`changed` marks it
            // seen as it returns).
            let mut fresh = first;
            if !first {
                match tokio::time::timeout(REAUTHENTICATE, self.readings.changed()).await {
                    Ok(Err(_)) => return None,
                    Ok(Ok(())) => fresh = true,
                    Err(_) => {}
                }
            }
            if self.authenticated.elapsed() >= REAUTHENTICATE {
                if !self.still_signed_in().await {
                    return None;
                }
                self.authenticated = Instant::now();
            }
            // Only a new reading can change what this caller sees.
            if !fresh {
                continue;
            }
            let Some(reading) = self.readings.borrow_and_update().clone() else {
                continue;
            };
            let mut decided = visible(&self.state, &self.caller, reading.decided.clone());
            decided.truncate(DECIDED_SHOWN);
            let inbox = Inbox {
                pending: visible(&self.state, &self.caller, reading.pending.clone()),
                decided,
            };
            let json = serde_json::to_string(&inbox).unwrap_or_default();
            if self.last.as_deref() != Some(json.as_str()) {
                self.last = Some(json.clone());
                return Some(json);
            }
        }
    }

    /// Whether the caller may still follow: its console sign-in (if the cookie opened the
    /// stream) is live and holds the same token, and the token authenticates.
    async fn still_signed_in(&self) -> bool {
        if let Some(secret) = &self.caller.2 {
            match signed_in(&self.state, secret).await {
                Ok(Some(token)) if token == self.caller.1 => {}
                _ => return false,
            }
        }
        self.state
            .gateway
            .authenticate(&self.caller.1)
            .await
            .is_ok()
    }
}

pub(super) async fn events(
    State(state): State<AdminState>,
    caller: Caller,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    caller.require_approver(&state)?;
    let slot = state.inbox.admit(&caller.0.name)?;
    let readings = state.inbox.readings.subscribe();
    state.inbox.wanted.notify_one();
    let follow = Follow {
        readings,
        state,
        caller,
        authenticated: Instant::now(),
        last: None,
        _slot: slot,
    };
    let stream = futures_util::stream::unfold(follow, |mut follow| async move {
        let json = follow.next().await?;
        Some((Ok(Event::default().event("inbox").data(json)), follow))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
