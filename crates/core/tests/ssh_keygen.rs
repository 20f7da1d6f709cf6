//! `ssh_key_fingerprint` against OpenSSH itself: fresh keys of each type from `ssh-keygen`,
//! fingerprinted by `ssh-keygen -lf` (needs openssh-client, which scripts/setup.sh installs).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use gatehouse_core::ssh_key::is_fingerprint;
use gatehouse_core::ssh_key_fingerprint;

fn ssh_keygen(args: &[&str]) -> String {
    let out = Command::new("ssh-keygen")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("ssh-keygen: {e} (install openssh-client)"));
    assert!(
        out.status.success(),
        "ssh-keygen {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn fresh_keys_fingerprint_as_ssh_keygen_says() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, bits, key_type) in [
        ("ed25519", "256", "ssh-ed25519"),
        ("rsa", "3072", "ssh-rsa"),
        ("ecdsa", "256", "ecdsa-sha2-nistp256"),
        ("ecdsa", "384", "ecdsa-sha2-nistp384"),
        ("ecdsa", "521", "ecdsa-sha2-nistp521"),
    ] {
        let path = dir.path().join(format!("{kind}-{bits}"));
        let path = path.to_str().unwrap();
        ssh_keygen(&[
            "-q", "-t", kind, "-b", bits, "-N", "", "-C", "test key", "-f", path,
        ]);
        let line = std::fs::read_to_string(format!("{path}.pub")).unwrap();
        // `ssh-keygen -lf` prints `BITS SHA256:... COMMENT (TYPE)`.
        let listed = ssh_keygen(&["-lf", &format!("{path}.pub")]);
        let expected = listed.split_whitespace().nth(1).unwrap();
        let (fingerprint, parsed_type) = ssh_key_fingerprint(&line).unwrap();
        assert_eq!(
            (fingerprint.as_str(), parsed_type.as_str()),
            (expected, key_type)
        );
        assert!(is_fingerprint(&fingerprint));
    }
}
