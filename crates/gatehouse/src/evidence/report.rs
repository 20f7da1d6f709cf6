//! The human-readable report: each PCI DSS control the package speaks to, what proves it, and
//! the counts, in Markdown and in HTML (the same content).

use gatehouse_audit::{PeriodCounts, VerifyReport};

/// Everything the report states.
#[derive(Debug)]
pub struct Report {
    /// Period start and end (RFC 3339).
    pub from: String,
    /// Period end.
    pub to: String,
    /// When the package was made.
    pub generated: String,
    /// The period's counts.
    pub counts: PeriodCounts,
    /// Tokens in the register, by state (active, expired, revoked).
    pub tokens: (u64, u64, u64),
    /// Registered SSH keys in the register, by state.
    pub keys: (u64, u64, u64),
    /// Connections and who may open them.
    pub connections: Vec<(String, String, Vec<String>)>,
    /// Recordings included and how many matched their seal.
    pub recordings: (u64, u64),
    /// The verification result.
    pub verify: VerifyReport,
    /// Retention days, and the oldest record held.
    pub retention: (u32, Option<String>),
    /// The rules, masks and connections as configured (TOML quoted).
    pub policy: String,
}

/// One control: its number, title, the claim, the artifacts, the figures.
struct Control {
    id: &'static str,
    title: &'static str,
    claim: String,
    artifacts: &'static str,
    figures: Vec<(String, String)>,
}

fn map(m: &std::collections::BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "none".into();
    }
    m.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn controls(r: &Report) -> Vec<Control> {
    let c = &r.counts;
    let denied = c.verdicts.get("deny").copied().unwrap_or(0)
        + c.verdicts.get("rejected").copied().unwrap_or(0);
    vec![
        Control {
            id: "7.1 / 7.2",
            title: "Access limited by need to know (least privilege)",
            claim: "Each connection is open only to the groups named for it; every command is \
                    judged by the rules; refusals are recorded."
                .into(),
            artifacts: "policy.md, sessions.csv (refused attempts), audit.csv (verdict, rule)",
            figures: vec![
                (
                    "connections configured".into(),
                    r.connections.len().to_string(),
                ),
                (
                    "sessions refused at opening".into(),
                    c.refused_sessions.to_string(),
                ),
                (
                    "commands denied or rejected by rules".into(),
                    denied.to_string(),
                ),
                ("verdicts".into(), map(&c.verdicts)),
            ],
        },
        Control {
            id: "8.2 / 8.6",
            title: "Every identity, human or not, is individual, issued and revocable",
            claim: "Services and jobs connect with their own token or JWT, never the server's \
                    password; each token is issued to a named identity by someone, shown once, \
                    stored only as a hash, scoped, and revocable. An SSH key is registered to a \
                    named identity the same way (kept by its public fingerprint), scoped and \
                    revocable alike."
                .into(),
            artifacts: "tokens.csv (register), sessions.csv",
            figures: vec![
                (
                    "identities active in the period".into(),
                    c.identities.to_string(),
                ),
                ("of which by OIDC JWT".into(), c.jwt_identities.to_string()),
                ("tokens active".into(), r.tokens.0.to_string()),
                ("tokens expired".into(), r.tokens.1.to_string()),
                ("tokens revoked".into(), r.tokens.2.to_string()),
                ("ssh keys active".into(), r.keys.0.to_string()),
                ("ssh keys expired".into(), r.keys.1.to_string()),
                ("ssh keys revoked".into(), r.keys.2.to_string()),
            ],
        },
        Control {
            id: "10.2",
            title: "Audit logs record every action",
            claim: "One entry per command: who, what (text and parameters, masked), where, when, \
                    with what result (rows, error), how long."
                .into(),
            artifacts: "audit.jsonl, audit.csv, sessions.csv, recordings/",
            figures: vec![
                ("audit entries".into(), c.entries.to_string()),
                ("sessions".into(), c.sessions.to_string()),
                ("connections used".into(), c.connections.to_string()),
                ("statement classes".into(), map(&c.classes)),
                ("outcomes".into(), map(&c.statuses)),
            ],
        },
        Control {
            id: "10.3",
            title: "Audit logs are protected from change",
            claim: "Every write's SHA-256 is in a keyed hash chain (one link per session event, \
                    one per ingest batch of statements, each listing its writes); recordings \
                    are sealed at session end, terminal casts when their channel ends (their \
                    seals inside the sealed recording); verification re-reads everything."
                .into(),
            artifacts: "verify.json, sessions.csv (recording_sha256), manifest.json",
            figures: vec![
                ("chain links verified".into(), r.verify.links.to_string()),
                (
                    "writes re-read and matched".into(),
                    r.verify.writes_checked.to_string(),
                ),
                (
                    "sealed recordings verified".into(),
                    r.verify.recordings_checked.to_string(),
                ),
                (
                    "sealed terminal casts verified".into(),
                    r.verify.casts_checked.to_string(),
                ),
                ("problems found".into(), r.verify.problems.len().to_string()),
                (
                    "recordings in this package matching their seal".into(),
                    format!("{} of {}", r.recordings.1, r.recordings.0),
                ),
            ],
        },
        Control {
            id: "10.5",
            title: "Audit history retained for at least 12 months",
            claim: "Evidence is kept for the configured period and removed only by a retention \
                    run, which is itself recorded and leaves the chain verifiable."
                .into(),
            artifacts: "retention.json, audit.csv (PURGE entries)",
            figures: vec![
                ("retention (days)".into(), r.retention.0.to_string()),
                (
                    "oldest record held".into(),
                    r.retention.1.clone().unwrap_or_else(|| "none".into()),
                ),
                ("purges in the period".into(), c.purges.to_string()),
            ],
        },
        Control {
            id: "12.3",
            title: "Policy enforced and reviewed",
            claim: "Risky commands wait for a named approver; cardholder and personal data is \
                    masked in results for identities that are not exempt; the active policy is \
                    quoted below."
                .into(),
            artifacts: "approvals.csv, masking.csv, policy.md",
            figures: vec![
                ("approval requests".into(), map(&c.approvals)),
                ("values masked".into(), c.masked_values.to_string()),
                (
                    "commands with masked values".into(),
                    c.masked_entries.to_string(),
                ),
            ],
        },
    ]
}

/// The report in Markdown.
pub fn markdown(r: &Report) -> String {
    let mut md = format!(
        "# Gatehouse evidence package\n\nPeriod: {} to {}  \nGenerated: {}\n\n\
         Every file listed in `manifest.json` carries its SHA-256; `sha256sum -c SHA256SUMS` \
         checks them all.\n\n## Controls\n\n",
        r.from, r.to, r.generated
    );
    for c in controls(r) {
        md.push_str(&format!(
            "### {} — {}\n\n{}\n\nArtifacts: {}\n\n| figure | value |\n|---|---|\n",
            c.id, c.title, c.claim, c.artifacts
        ));
        for (k, v) in &c.figures {
            md.push_str(&format!("| {k} | {v} |\n"));
        }
        md.push('\n');
    }
    if !r.verify.problems.is_empty() {
        md.push_str("## Verification problems\n\n");
        for p in &r.verify.problems {
            md.push_str(&format!("- {p}\n"));
        }
        md.push('\n');
    }
    md.push_str("## Connections and who may open them\n\n| connection | protocol | groups |\n|---|---|---|\n");
    for (name, protocol, groups) in &r.connections {
        md.push_str(&format!(
            "| {name} | {protocol} | {} |\n",
            groups.join(", ")
        ));
    }
    md.push_str(&format!(
        "\n## Active policy\n\n```toml\n{}\n```\n",
        r.policy
    ));
    md
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The report in HTML (self-contained, no scripts).
pub fn html(r: &Report) -> String {
    let mut h = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Gatehouse evidence {} to {}</title>\
         <style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:.3em .6em;text-align:left}}\
         pre{{background:#f4f4f4;padding:1em;overflow:auto}}</style></head><body>\n\
         <h1>Gatehouse evidence package</h1>\n<p>Period: {} to {}<br>Generated: {}</p>\n\
         <p>Every file listed in <code>manifest.json</code> carries its SHA-256; \
         <code>sha256sum -c SHA256SUMS</code> checks them all.</p>\n<h2>Controls</h2>\n",
        esc(&r.from),
        esc(&r.to),
        esc(&r.from),
        esc(&r.to),
        esc(&r.generated)
    );
    for c in controls(r) {
        h.push_str(&format!(
            "<section class=\"control\" id=\"pci-{}\"><h3>{} — {}</h3>\n<p>{}</p>\n\
             <p>Artifacts: {}</p>\n<table><tr><th>figure</th><th>value</th></tr>\n",
            esc(&c.id.replace([' ', '/'], "")),
            esc(c.id),
            esc(c.title),
            esc(&c.claim),
            esc(c.artifacts)
        ));
        for (k, v) in &c.figures {
            h.push_str(&format!(
                "<tr><td>{}</td><td class=\"figure\">{}</td></tr>\n",
                esc(k),
                esc(v)
            ));
        }
        h.push_str("</table></section>\n");
    }
    if !r.verify.problems.is_empty() {
        h.push_str("<h2>Verification problems</h2><ul>\n");
        for p in &r.verify.problems {
            h.push_str(&format!("<li>{}</li>\n", esc(p)));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("<h2>Connections and who may open them</h2>\n<table><tr><th>connection</th><th>protocol</th><th>groups</th></tr>\n");
    for (name, protocol, groups) in &r.connections {
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            esc(name),
            esc(protocol),
            esc(&groups.join(", "))
        ));
    }
    h.push_str(&format!(
        "</table>\n<h2>Active policy</h2>\n<pre>{}</pre>\n</body></html>\n",
        esc(&r.policy)
    ));
    h
}
