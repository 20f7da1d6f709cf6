//! What a webhook is sent: the request's fields as JSON, or a line of text for a chat.

use gatehouse_audit::{ApprovalEvent, ApprovalRow};
use serde::Serialize;

/// A notification: what happened to which request, with a link to it in the console. The
/// statement is the one the audit trail keeps (masked, secrets redacted).
#[derive(Debug, Serialize)]
pub struct Notice<'a> {
    /// `approval.requested`, `approval.decided` or `approval.closed`.
    pub event: &'static str,
    /// The request.
    #[serde(flatten)]
    pub request: &'a ApprovalRow,
    /// The request's page in the console.
    pub url: String,
}

impl<'a> Notice<'a> {
    /// The notice of `event` about `request`.
    pub fn new(event: &ApprovalEvent, request: &'a ApprovalRow, console_url: &str) -> Self {
        let event = match event {
            ApprovalEvent::Requested(_) => "approval.requested",
            ApprovalEvent::Decided(_) => "approval.decided",
            ApprovalEvent::Closed(_) | ApprovalEvent::Elsewhere => "approval.closed",
        };
        Self {
            event,
            request,
            url: format!("{console_url}/#/approvals/{}", request.id),
        }
    }

    /// The generic JSON body.
    pub fn json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A Slack-compatible incoming-webhook body: `{"text": ...}` in Slack's markup.
    pub fn slack(&self) -> Vec<u8> {
        let r = self.request;
        // Escaped like every other field (the client wrote it), and with no backtick that
        // could close the code block early; the console shows it exactly.
        let statement = escape(&clip(&r.statement, 500)).replace('`', "\u{2018}");
        let what = match self.event {
            "approval.requested" => format!(
                "*{}* asks to run on *{}* (rule {}), until {}:",
                escape(&r.identity),
                escape(&r.connection),
                escape(&r.rule),
                r.expires_at
            ),
            "approval.decided" => format!(
                "*{}*'s request on *{}* was *{}* by {}{}:",
                escape(&r.identity),
                escape(&r.connection),
                r.state,
                escape(r.decided_by.as_deref().unwrap_or("-")),
                r.reason
                    .as_deref()
                    .map(|why| format!(" ({})", escape(why)))
                    .unwrap_or_default()
            ),
            _ => format!(
                "*{}*'s request on *{}* is {} undecided:",
                escape(&r.identity),
                escape(&r.connection),
                r.state
            ),
        };
        let text = format!(
            "Gatehouse: {what}\n```{statement}```\n<{}|{} in the console>",
            self.url, r.id
        );
        serde_json::to_vec(&serde_json::json!({ "text": text })).unwrap_or_default()
    }
}

/// Slack's three control characters, escaped as its markup asks.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn clip(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((at, _)) => format!("{}…", text.get(..at).unwrap_or(text)),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ApprovalRow {
        ApprovalRow {
            id: "apr_1".into(),
            state: "pending".into(),
            identity: "alice<script>".into(),
            groups: vec!["dev".into()],
            connection: "payments".into(),
            protocol: "postgres".into(),
            statement: "DELETE FROM t".into(),
            params: vec![],
            class: "delete-without-where".into(),
            rule: "unbounded-writes".into(),
            approvers: vec!["dba".into()],
            session: "s1".into(),
            requested_at: "2026-12-07T10:00:00Z".into(),
            expires_at: "2026-12-07T10:05:00Z".into(),
            decided_by: None,
            decided_at: None,
            reason: None,
            executed_at: None,
        }
    }

    #[test]
    fn the_json_body_carries_the_request_and_its_link() {
        let r = request();
        let n = Notice::new(&ApprovalEvent::Requested("apr_1".into()), &r, "http://gw:1");
        let v: serde_json::Value = serde_json::from_slice(&n.json()).unwrap();
        assert_eq!(v["event"], "approval.requested");
        assert_eq!(v["id"], "apr_1");
        assert_eq!(v["statement"], "DELETE FROM t");
        assert_eq!(v["rule"], "unbounded-writes");
        assert_eq!(v["url"], "http://gw:1/#/approvals/apr_1");
    }

    #[test]
    fn the_slack_body_is_one_escaped_text() {
        let mut r = request();
        r.state = "denied".into();
        r.decided_by = Some("bob".into());
        r.reason = Some("not <now>".into());
        let n = Notice::new(&ApprovalEvent::Decided("apr_1".into()), &r, "http://gw:1");
        let v: serde_json::Value = serde_json::from_slice(&n.slack()).unwrap();
        let text = v["text"].as_str().unwrap();
        assert!(text.contains("alice&lt;script&gt;"), "{text}");
        assert!(text.contains("*denied* by bob (not &lt;now&gt;)"), "{text}");
        assert!(
            text.contains("<http://gw:1/#/approvals/apr_1|apr_1"),
            "{text}"
        );
        assert_eq!(v.as_object().unwrap().len(), 1);
        r.statement = "DELETE FROM t -- <!channel> <https://evil|click> ```".into();
        let n = Notice::new(&ApprovalEvent::Requested("apr_1".into()), &r, "http://gw:1");
        let v: serde_json::Value = serde_json::from_slice(&n.slack()).unwrap();
        let text = v["text"].as_str().unwrap();
        assert!(
            !text.contains("<!channel>") && !text.contains("<https://evil"),
            "{text}"
        );
        assert_eq!(text.matches("```").count(), 2, "{text}");
    }
}
