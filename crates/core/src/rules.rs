//! Guardrails: the `[[rule]]`s that decide, per command, allow, deny or review.
//!
//! A rule matches when every condition it names holds: the connection is one of its
//! `connections`, the identity is in one of its `groups`, and its `when` matches the command —
//! a statement class from the parser (any statement of a multi-statement text counts), a
//! `pattern` (a regex over the SQL text), or for SSH a `command` regex over the exec line.
//! The first matching rule wins; with none, the command is allowed (the identity could open the
//! connection, which is the access decision).
//!
//! Patterns see through comments and spacing: they are tried on the text as sent and on the
//! parser's canonical rendering of it (comments gone, keywords upper case, one space between
//! tokens), so `grant/**/select` or a statement split over lines cannot slip past `(?i)\bgrant\s+select`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use serde::Deserialize;
use thiserror::Error;

use crate::classify::{canonical, Classification, StatementClass};
use crate::connection::Protocol;

/// How long a held command waits for a decision unless its rule says otherwise.
pub const DEFAULT_REVIEW_TIMEOUT: Duration = Duration::from_secs(300);

/// A `[[rule]]` as written in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Name shown to clients and in the audit trail.
    pub name: String,
    /// Connections it applies to (default: all).
    #[serde(default)]
    pub connections: Vec<String>,
    /// Identity groups it applies to (default: everyone).
    #[serde(default)]
    pub groups: Vec<String>,
    /// What the command must look like (default: anything).
    #[serde(default)]
    pub when: WhenSpec,
    /// `allow`, `deny` or `review`.
    pub action: String,
    /// Groups whose members may approve (review rules).
    #[serde(default)]
    pub approvers: Vec<String>,
    /// How long a held command waits for a decision, e.g. `2m` (review rules; default 5m).
    pub timeout: Option<String>,
    /// How long after an approval the same identity may run the identical command again on the
    /// same connection without asking, e.g. `15m` (review rules; default: no grace).
    pub grace: Option<String>,
    /// What a denied client is told, after the rule's name (deny rules).
    pub message: Option<String>,
}

/// `when = { ... }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhenSpec {
    /// Statement classes (`select`, `delete-without-where`, `drop`, ...).
    #[serde(default)]
    pub class: Vec<String>,
    /// A regex over the SQL text.
    pub pattern: Option<String>,
    /// A regex over an SSH exec line (or an SFTP operation).
    pub command: Option<String>,
}

/// A rule's configuration is wrong; says which rule and what to fix.
#[derive(Debug, Error)]
pub enum RuleError {
    /// The action is not one of allow, deny, review.
    #[error("rule \"{rule}\": action \"{action}\" is not one of allow, deny, review")]
    Action {
        /// The rule.
        rule: String,
        /// What was written.
        action: String,
    },
    /// A class name is unknown.
    #[error("rule \"{rule}\": class \"{class}\" is unknown (known: {known})")]
    Class {
        /// The rule.
        rule: String,
        /// What was written.
        class: String,
        /// The known names.
        known: String,
    },
    /// A regex does not compile.
    #[error("rule \"{rule}\": {field} is not a valid regex: {why}")]
    Regex {
        /// The rule.
        rule: String,
        /// `pattern` or `command`.
        field: &'static str,
        /// The compiler's complaint.
        why: String,
    },
    /// A duration does not parse.
    #[error("rule \"{rule}\": {field} \"{value}\" is not a duration (examples: 90s, 5m, 1h)")]
    Duration {
        /// The rule.
        rule: String,
        /// `timeout` or `grace`.
        field: &'static str,
        /// What was written.
        value: String,
    },
    /// A review rule names nobody who could approve.
    #[error("rule \"{0}\": action \"review\" needs approvers = [\"group\", ...]")]
    NoApprovers(String),
    /// Two rules share a name.
    #[error("rule \"{0}\" is defined twice; rule names must be unique")]
    Duplicate(String),
}

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Run it.
    Allow,
    /// Refuse it.
    Deny,
    /// Hold it for an approver.
    Review,
}

/// A review rule's settings, shared by the commands it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    /// The rule's name.
    pub rule: String,
    /// Groups whose members may approve.
    pub approvers: Vec<String>,
    /// How long a held command waits.
    pub timeout: Duration,
    /// How long an approval covers re-runs of the identical command by the same identity.
    pub grace: Duration,
}

/// The judgement of the rules on one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// Run it (`rule` is the allow rule that matched, if any).
    Allow {
        /// The rule, or `None` for the default.
        rule: Option<String>,
    },
    /// Refuse it.
    Deny {
        /// The rule.
        rule: String,
        /// What the client is told.
        reason: String,
    },
    /// Hold it for an approver.
    Review(Arc<Review>),
}

struct Rule {
    name: String,
    connections: Vec<String>,
    groups: Vec<String>,
    classes: Vec<StatementClass>,
    pattern: Option<Regex>,
    command: Option<Regex>,
    action: Action,
    review: Option<Arc<Review>>,
    message: Option<String>,
}

/// The compiled rules, in configuration order.
#[derive(Default)]
pub struct Rules {
    rules: Vec<Rule>,
    any_pattern: bool,
}

impl fmt::Debug for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.rules.iter().map(|r| &r.name))
            .finish()
    }
}

/// What the rules look at.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The wire (SQL patterns apply to SQL wires, `command` to SSH).
    pub protocol: Protocol,
    /// The connection name.
    pub connection: &'a str,
    /// The identity's groups.
    pub groups: &'a [String],
    /// The command text.
    pub text: &'a str,
    /// Its statement classes.
    pub classes: &'a Classification,
}

impl Rules {
    /// Compiles the configuration's rules.
    pub fn new(specs: Vec<RuleSpec>) -> Result<Self, RuleError> {
        let mut rules: Vec<Rule> = Vec::with_capacity(specs.len());
        for spec in specs {
            if rules.iter().any(|r| r.name == spec.name) {
                return Err(RuleError::Duplicate(spec.name));
            }
            rules.push(compile(spec)?);
        }
        let any_pattern = rules.iter().any(|r| r.pattern.is_some());
        Ok(Self { rules, any_pattern })
    }

    /// Whether there are no rules (every command is allowed).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Judges one command: the first matching rule decides.
    pub fn judge(&self, subject: &Subject<'_>) -> Judgement {
        // The canonical rendering is built once, and only if some pattern needs it.
        let mut rendered: Option<Option<String>> = None;
        for rule in &self.rules {
            if !rule.applies_to(subject) {
                continue;
            }
            if !rule.classes.is_empty()
                && !rule.classes.iter().any(|c| subject.classes.contains(*c))
            {
                continue;
            }
            if let Some(re) = &rule.command {
                if subject.protocol != Protocol::Ssh || !re.is_match(subject.text) {
                    continue;
                }
            }
            if let Some(re) = &rule.pattern {
                if subject.protocol == Protocol::Ssh {
                    continue;
                }
                let hit = re.is_match(subject.text)
                    || rendered
                        .get_or_insert_with(|| {
                            // Text too long to parse is matched as sent only.
                            (self.any_pattern
                                && subject.text.len() <= crate::classify::MAX_PARSED_TEXT)
                                .then(|| canonical(subject.protocol, subject.text))
                        })
                        .as_deref()
                        .is_some_and(|t| re.is_match(t));
                if !hit {
                    continue;
                }
            }
            return match rule.action {
                Action::Allow => Judgement::Allow {
                    rule: Some(rule.name.clone()),
                },
                Action::Deny => Judgement::Deny {
                    rule: rule.name.clone(),
                    reason: match &rule.message {
                        Some(m) => format!("refused by rule \"{}\": {m}", rule.name),
                        None => format!(
                            "refused by rule \"{}\" ({}); ask the gateway operator if you need it",
                            rule.name,
                            describe(subject.classes)
                        ),
                    },
                },
                Action::Review => match &rule.review {
                    Some(review) => Judgement::Review(review.clone()),
                    None => Judgement::Deny {
                        rule: rule.name.clone(),
                        reason: format!("refused by rule \"{}\"", rule.name),
                    },
                },
            };
        }
        Judgement::Allow { rule: None }
    }
}

fn describe(classes: &Classification) -> String {
    if classes.classes().is_empty() {
        "empty statement".into()
    } else {
        format!("statement class {classes}")
    }
}

impl Rule {
    fn applies_to(&self, subject: &Subject<'_>) -> bool {
        (self.connections.is_empty() || self.connections.iter().any(|c| c == subject.connection))
            && (self.groups.is_empty() || self.groups.iter().any(|g| subject.groups.contains(g)))
    }
}

fn compile(spec: RuleSpec) -> Result<Rule, RuleError> {
    let action = match spec.action.as_str() {
        "allow" => Action::Allow,
        "deny" => Action::Deny,
        "review" => Action::Review,
        other => {
            return Err(RuleError::Action {
                rule: spec.name,
                action: other.to_owned(),
            })
        }
    };
    let mut classes = Vec::with_capacity(spec.when.class.len());
    for name in &spec.when.class {
        match StatementClass::parse(name) {
            Some(c) => classes.push(c),
            None => {
                return Err(RuleError::Class {
                    rule: spec.name.clone(),
                    class: name.clone(),
                    known: StatementClass::ALL
                        .iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }
        }
    }
    let regex = |field: &'static str, text: &Option<String>| {
        text.as_deref()
            .map(Regex::new)
            .transpose()
            .map_err(|e| RuleError::Regex {
                rule: spec.name.clone(),
                field,
                why: e.to_string(),
            })
    };
    let pattern = regex("pattern", &spec.when.pattern)?;
    let command = regex("command", &spec.when.command)?;
    let duration = |field: &'static str, text: &Option<String>, default: Duration| match text {
        None => Ok(default),
        Some(t) => humantime::parse_duration(t).map_err(|_| RuleError::Duration {
            rule: spec.name.clone(),
            field,
            value: t.clone(),
        }),
    };
    let review = if action == Action::Review {
        if spec.approvers.is_empty() {
            return Err(RuleError::NoApprovers(spec.name));
        }
        Some(Arc::new(Review {
            rule: spec.name.clone(),
            approvers: spec.approvers.clone(),
            timeout: duration("timeout", &spec.timeout, DEFAULT_REVIEW_TIMEOUT)?,
            grace: duration("grace", &spec.grace, Duration::ZERO)?,
        }))
    } else {
        None
    };
    Ok(Rule {
        name: spec.name,
        connections: spec.connections,
        groups: spec.groups,
        classes,
        pattern,
        command,
        action,
        review,
        message: spec.message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::classify;

    fn rules(toml_rules: &str) -> Rules {
        #[derive(Deserialize)]
        struct File {
            rule: Vec<RuleSpec>,
        }
        let file: File = toml::from_str(toml_rules).unwrap();
        Rules::new(file.rule).unwrap()
    }

    fn judge(rules: &Rules, groups: &[&str], text: &str) -> Judgement {
        let groups: Vec<String> = groups.iter().map(|s| s.to_string()).collect();
        let classes = classify(Protocol::Postgres, text);
        rules.judge(&Subject {
            protocol: Protocol::Postgres,
            connection: "payments",
            groups: &groups,
            text,
            classes: &classes,
        })
    }

    const RULES: &str = r#"
        [[rule]]
        name = "unbounded-writes"
        connections = ["payments"]
        when = { class = ["delete-without-where", "update-without-where", "truncate", "drop"] }
        action = "review"
        approvers = ["dba"]
        timeout = "30s"

        [[rule]]
        name = "no-grants"
        when = { pattern = "(?i)\\bgrant\\s" }
        action = "deny"

        [[rule]]
        name = "batch-reads-only"
        groups = ["batch"]
        when = { class = ["insert", "update", "delete"] }
        action = "deny"
    "#;

    #[test]
    fn first_match_wins_and_default_allows() {
        let r = rules(RULES);
        assert!(matches!(
            judge(&r, &["dev"], "DELETE FROM t"),
            Judgement::Review(rv) if rv.rule == "unbounded-writes" && rv.timeout == Duration::from_secs(30)
        ));
        assert_eq!(
            judge(&r, &["dev"], "SELECT 1"),
            Judgement::Allow { rule: None }
        );
        assert!(matches!(
            judge(&r, &["batch"], "INSERT INTO t VALUES (1)"),
            Judgement::Deny { rule, .. } if rule == "batch-reads-only"
        ));
        assert_eq!(
            judge(&r, &["dev"], "INSERT INTO t VALUES (1)"),
            Judgement::Allow { rule: None }
        );
    }

    #[test]
    fn hiding_the_statement_does_not_help() {
        let r = rules(RULES);
        for text in [
            "/* harmless */ dElEtE\n  FROM t",
            "SELECT 1; DELETE FROM t; SELECT 2",
            "-- comment\nTRUNCATE t",
            "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x",
            "PREPARE p AS DELETE FROM t",
        ] {
            assert!(
                matches!(judge(&r, &["dev"], text), Judgement::Review(_)),
                "{text}"
            );
        }
        for text in [
            "GrAnT SELECT ON t TO bob",
            "/* x */ grant/* y */select ON t TO bob",
        ] {
            let j = judge(&r, &["dev"], text);
            assert!(
                matches!(&j, Judgement::Deny { rule, reason } if rule == "no-grants" && reason.contains("no-grants")),
                "{text}: {j:?}"
            );
        }
    }

    #[test]
    fn bad_rules_are_refused_with_the_rule_named() {
        let bad = [
            (
                r#"name = "a"
                action = "maybe""#,
                "action \"maybe\"",
            ),
            (
                r#"name = "b"
                when = { class = ["delet"] }
                action = "deny""#,
                "class \"delet\"",
            ),
            (
                r#"name = "c"
                when = { pattern = "(" }
                action = "deny""#,
                "not a valid regex",
            ),
            (
                r#"name = "d"
                action = "review""#,
                "needs approvers",
            ),
            (
                r#"name = "e"
                action = "review"
                approvers = ["dba"]
                timeout = "soon""#,
                "not a duration",
            ),
        ];
        for (body, want) in bad {
            let spec: RuleSpec = toml::from_str(body).unwrap();
            let err = Rules::new(vec![spec]).err().unwrap().to_string();
            assert!(err.contains(want), "{err}");
        }
    }
}
