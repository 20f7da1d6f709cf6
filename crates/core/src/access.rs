//! Who may open which connection: the token's scope and the connection's groups.

use crate::connection::ConnectionSpec;
use crate::identity::TokenRecord;

/// Whether the token's identity may open the connection: the token's connection scope (if any)
/// names it, and the identity shares at least one group with the connection.
pub fn may_open(token: &TokenRecord, connection: &ConnectionSpec) -> bool {
    let in_scope = token.connections.is_empty() || token.connections.contains(&connection.name);
    let in_group = token
        .identity
        .groups
        .iter()
        .any(|g| connection.groups.contains(g));
    in_scope && in_group
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::connection::Protocol;
    use crate::identity::{Identity, TokenId};

    fn token(groups: &[&str], scope: &[&str]) -> TokenRecord {
        TokenRecord {
            id: TokenId("tok_1".into()),
            identity: Identity {
                name: "job".into(),
                groups: groups.iter().map(|s| s.to_string()).collect(),
            },
            connections: scope.iter().map(|s| s.to_string()).collect(),
            created_at: SystemTime::UNIX_EPOCH,
            expires_at: None,
            revoked_at: None,
            created_by: "test".into(),
        }
    }

    fn payments() -> ConnectionSpec {
        crate::testing::connection("payments", Protocol::Postgres, &["batch", "dba"])
    }

    #[test]
    fn group_and_scope_both_decide() {
        let c = payments();
        assert!(may_open(&token(&["batch"], &[]), &c));
        assert!(may_open(&token(&["x", "dba"], &["payments"]), &c));
        assert!(!may_open(&token(&["web"], &[]), &c));
        assert!(!may_open(&token(&["batch"], &["other"]), &c));
    }
}
