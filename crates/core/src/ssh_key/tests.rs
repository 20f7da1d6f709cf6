//! The fingerprint against `ssh-keygen -lf`, and what is refused.

use super::*;

/// The fixtures and what `ssh-keygen -lf` printed for them (fixtures/ssh/README.md).
const FIXTURES: &[(&str, &str, &str)] = &[
    (
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/ssh/ed25519.pub"
        )),
        "SHA256:2TGVr39c88cuJae2B/zXeB10cgF90VV3k6vy8ARxqlE",
        "ssh-ed25519",
    ),
    (
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/ssh/rsa.pub"
        )),
        "SHA256:HijGrf++ZgWQ8/ganc1/FYMYHFlJX1f5rvQlejZzScA",
        "ssh-rsa",
    ),
    (
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/ssh/ecdsa.pub"
        )),
        "SHA256:El8AeffyFtKFfn25e1Q+qUPC9BrlbVwyMtk+acNaqUQ",
        "ecdsa-sha2-nistp256",
    ),
];

fn ok(line: &str) -> (String, String) {
    ssh_key_fingerprint(line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

#[test]
fn fingerprints_match_ssh_keygen() {
    for (line, fingerprint, key_type) in FIXTURES {
        assert_eq!(ok(line), ((*fingerprint).into(), (*key_type).into()));
        assert!(is_fingerprint(fingerprint));
    }
}

#[test]
fn comments_and_whitespace_do_not_change_the_fingerprint() {
    let (line, fingerprint, _) = FIXTURES[0];
    let mut parts = line.split_whitespace();
    let (t, b) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    for variant in [
        format!("{t} {b}"),
        format!("  {t}\t{b}  another comment with spaces \n"),
    ] {
        assert_eq!(ok(&variant).0, fingerprint);
    }
}

#[test]
fn malformed_lines_are_refused_with_a_reason() {
    let (ed, _, _) = FIXTURES[0];
    let ed_b64 = ed.split_whitespace().nth(1).unwrap_or("");
    let cases: &[(String, &str)] = &[
        (String::new(), "TYPE BASE64"),
        ("ssh-ed25519".into(), "TYPE BASE64"),
        ("ssh-dss AAAA".into(), "ssh-dss"),
        (
            "ssh-ed25519-cert-v01@openssh.com AAAA".into(),
            "not supported",
        ),
        ("ssh-ed25519 not*base64".into(), "not base64"),
        // The blob says ed25519, the line says rsa.
        (format!("ssh-rsa {ed_b64}"), "not a ssh-rsa key"),
        // A bare type string with no key material after it.
        (
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5".into(),
            "not a ssh-ed25519",
        ),
        // A length prefix that runs past the end.
        ("ssh-ed25519 /////w==".into(), "not a ssh-ed25519"),
        (
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn...".into(),
            "private key",
        ),
        (
            "---- BEGIN SSH2 PUBLIC KEY ----\nAAAA\n---- END SSH2 PUBLIC KEY ----".into(),
            "ssh-keygen -i",
        ),
        (format!("{ed}{ed}"), "one key"),
        (format!("ssh-rsa {}", "A".repeat(MAX_LINE)), "longer"),
    ];
    for (line, why) in cases {
        match ssh_key_fingerprint(line) {
            Ok(r) => panic!("{line:?} was taken: {r:?}"),
            Err(e) => assert!(e.to_string().contains(why), "{line:?}: {e}"),
        }
    }
}

#[test]
fn blob_fingerprint_is_the_line_fingerprint() {
    let (line, fingerprint, _) = FIXTURES[1];
    let blob = STANDARD
        .decode(line.split_whitespace().nth(1).unwrap_or(""))
        .unwrap_or_default();
    assert_eq!(fingerprint_of_blob(&blob), fingerprint);
}

#[test]
fn only_fingerprint_shapes_are_fingerprints() {
    for text in [
        "",
        "SHA256:",
        "sha256:2TGVr39c88cuJae2B/zXeB10cgF90VV3k6vy8ARxqlE",
        "SHA256:2TGVr39c88cuJae2B/zXeB10cgF90VV3k6vy8ARxqlE=",
        "SHA256:2TGVr39c88cuJae2B/zXeB10cgF90VV3k6vy8ARxql",
        "SHA256:2TGVr39c88cuJae2B-zXeB10cgF90VV3k6vy8ARxqlE",
        "MD5:2TGVr39c88cuJae2B/zXeB10cgF90VV3k6vy8ARxqlE",
    ] {
        assert!(!is_fingerprint(text), "{text:?}");
    }
}
