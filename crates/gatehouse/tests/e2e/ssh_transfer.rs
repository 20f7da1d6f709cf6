//! Files through the gateway with the stock OpenSSH tools: scp and sftp of 100 MiB both ways
//! and rsync over `-e ssh`, checksums equal, each transfer in the audit trail.

use crate::ssh_support::{random_file, sha256, text, with_token, Sshd, SSH_OPTS};
use crate::support::{with_statement, Gateway};

#[test]
fn scp_sftp_and_rsync_move_100_mib_both_ways_intact() {
    let sshd = Sshd::start();
    let policy = format!(
        "{}\n[[rule]]\nname = \"keep-protected\"\nwhen = {{ command = \"^sftp (remove|rename) .*protected\" }}\n\
         action = \"deny\"\nmessage = \"protected files stay\"\n",
        sshd.connection("box", "")
    );
    let gw = Gateway::start_with_policy(&[], &policy, &[]);
    let token = gw.token("deployer", &["batch"]);
    let port = gw.ssh_port.to_string();
    let local = sshd.path("local.bin");
    random_file(&local, 100);
    let want = sha256(&local);
    let remote = |name: &str| format!("box@127.0.0.1:{}", sshd.path(name).display());

    // scp up and down (OpenSSH 9's scp speaks SFTP underneath).
    let mut args: Vec<&str> = vec!["-q", "-P", &port];
    args.extend(SSH_OPTS);
    let up_target = remote("scp-up.bin");
    let local_s = local.display().to_string();
    let out = with_token(
        "scp",
        &[&args[..], &[&local_s, &up_target]].concat(),
        None,
        &token,
    );
    assert!(out.status.success(), "scp up: {out:?}");
    assert_eq!(sha256(&sshd.path("scp-up.bin")), want);
    let down = sshd.path("scp-down.bin").display().to_string();
    let out = with_token(
        "scp",
        &[&args[..], &[&up_target, &down]].concat(),
        None,
        &token,
    );
    assert!(out.status.success(), "scp down: {out:?}");
    assert_eq!(sha256(&sshd.path("scp-down.bin")), want);

    // sftp put and get in one session, with the housekeeping an operator does around them.
    let dir = sshd.path("drop").display().to_string();
    let script = format!(
        "mkdir {dir}\nput {local_s} {dir}/in.bin\nget {dir}/in.bin {}\nrename {dir}/in.bin {dir}/kept.bin\n\
         chmod 600 {dir}/kept.bin\nrm {dir}/kept.bin\nrmdir {dir}\n",
        sshd.path("sftp-down.bin").display()
    );
    let mut sftp_args: Vec<&str> = vec!["-o", "BatchMode=no", "-b", "-", "-P", &port];
    sftp_args.extend(SSH_OPTS);
    sftp_args.push("box@127.0.0.1");
    let out = with_token("sftp", &sftp_args, Some(&script), &token);
    assert!(out.status.success(), "sftp: {out:?}");
    assert_eq!(sha256(&sshd.path("sftp-down.bin")), want);
    assert!(!sshd.path("drop").exists(), "the sftp housekeeping ran");

    // A rule refuses one operation; the client is told and the session goes on.
    std::fs::write(sshd.path("protected.txt"), "keep me").unwrap();
    let script = format!(
        "-rm {p}\nls {p}\n",
        p = sshd.path("protected.txt").display()
    );
    let out = with_token("sftp", &sftp_args, Some(&script), &token);
    assert!(out.status.success(), "sftp: {out:?}");
    assert!(text(&out.stderr).contains("Permission denied"), "{out:?}");
    assert!(
        sshd.path("protected.txt").exists(),
        "the refused remove did not run"
    );

    // rsync over ssh through the gateway.
    let rsh = format!("ssh -p {port} {}", SSH_OPTS.join(" "));
    let out = with_token(
        "rsync",
        &["-a", "-e", &rsh, &local_s, &remote("rsync.bin")],
        None,
        &token,
    );
    assert!(
        out.status.success(),
        "rsync: {} {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(sha256(&sshd.path("rsync.bin")), want);

    let rows = gw.audit_until(|r| {
        with_statement(r, "rsync --server")
            .first()
            .is_some_and(|e| e["status"] == "ok")
    });
    let rsync = with_statement(&rows, "rsync --server");
    assert_eq!(rsync[0]["class"], "exec", "{rows:#?}");
    assert_eq!(rsync[0]["identity"], "deployer");
    let sftp_sessions = rows
        .iter()
        .filter(|e| e["statement"] == "sftp session")
        .count();
    assert!(
        sftp_sessions >= 3,
        "two scp and one sftp session: {rows:#?}"
    );
}
