//! Helpers of the SSH tests: a private OpenSSH `sshd` per test (free port, generated host key,
//! a key only the gateway holds), its `[[connection]]` section, and the OpenSSH client through
//! the gateway with a token as the password (sshpass).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{free_port, run, Gateway};

/// A private sshd listening on loopback.
pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// The host's public key line, as a connection pins it.
    pub host_pub: String,
    /// The private key the gateway logs in with (its public half is the only authorized key).
    pub gw_key: PathBuf,
    child: Child,
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success(), "ssh-keygen: {out:?}");
}

impl Sshd {
    /// Starts sshd with its own host key; only the gateway's key may log in (as root).
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("gw_key"));
        Self::start_in(dir)
    }

    /// Starts sshd with a given host key and gateway key (the deployment's demo keys).
    pub fn start_with_keys(host_key: &Path, gw_key: &Path) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        for (from, to) in [(host_key, "host_key"), (gw_key, "gw_key")] {
            std::fs::copy(from, d.join(to)).expect("key");
            let public = from.with_extension(match from.extension() {
                Some(e) => format!("{}.pub", e.to_string_lossy()),
                None => "pub".into(),
            });
            std::fs::copy(&public, d.join(format!("{to}.pub"))).expect("public key");
            std::fs::set_permissions(
                d.join(to),
                std::os::unix::fs::PermissionsExt::from_mode(0o600),
            )
            .expect("key mode");
        }
        Self::start_in(dir)
    }

    fn start_in(dir: tempfile::TempDir) -> Self {
        let d = dir.path();
        std::fs::copy(d.join("gw_key.pub"), d.join("authorized_keys")).expect("authorized_keys");
        std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile {pid}\n\
             AuthorizedKeysFile {ak}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
             Subsystem sftp internal-sftp\nAcceptEnv LANG LC_* GH_*\nLogLevel VERBOSE\n",
            hk = d.join("host_key").display(),
            pid = d.join("sshd.pid").display(),
            ak = d.join("authorized_keys").display(),
        );
        std::fs::write(d.join("sshd_config"), config).expect("sshd_config");
        let child = Command::new("/usr/sbin/sshd")
            .arg("-D")
            .arg("-f")
            .arg(d.join("sshd_config"))
            .arg("-E")
            .arg(d.join("sshd.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sshd (installed by scripts/setup.sh)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "sshd did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        let host_pub = std::fs::read_to_string(d.join("host_key.pub"))
            .expect("host key")
            .trim()
            .to_owned();
        Self {
            port,
            host_pub,
            gw_key: d.join("gw_key"),
            dir,
            child,
        }
    }

    /// A `[[connection]]` section fronting this sshd as `name` (user root, open to `batch` and
    /// `dba`); `extra` lines are appended.
    pub fn connection(&self, name: &str, extra: &str) -> String {
        format!(
            "[[connection]]\nname = {name:?}\nprotocol = \"ssh\"\naddress = \"127.0.0.1:{}\"\n\
             username = \"root\"\nprivate_key = {{ file = {:?} }}\nhost_key = {:?}\n\
             groups = [\"dba\", \"batch\"]\n{extra}\n",
            self.port,
            self.gw_key.display().to_string(),
            self.host_pub
        )
    }

    /// A path inside this sshd's scratch directory (the host and the client share the machine).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// OpenSSH client options for tests: no known_hosts, no keys of the machine's user, the token
/// as the password.
pub const SSH_OPTS: [&str; 10] = [
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "PubkeyAuthentication=no",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "ConnectTimeout=10",
];

/// Runs `ssh CONNECTION@gateway ARGS...` with `token` as the password (sshpass -e).
pub fn ssh(
    gw: &Gateway,
    connection: &str,
    token: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Output {
    let port = gw.ssh_port.to_string();
    let target = format!("{connection}@127.0.0.1");
    let mut all: Vec<&str> = vec!["-e", "ssh", "-p", &port];
    all.extend(SSH_OPTS);
    all.push(&target);
    all.extend(args);
    run("sshpass", &all, stdin, &[("SSHPASS", token)])
}

/// Runs another OpenSSH program (scp, sftp, rsync) under sshpass with `token` as the password.
pub fn with_token(program: &str, args: &[&str], stdin: Option<&str>, token: &str) -> Output {
    let mut all: Vec<&str> = vec!["-e", program];
    all.extend(args);
    run("sshpass", &all, stdin, &[("SSHPASS", token)])
}

/// The text of an output stream.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// SHA-256 of a file, by sha256sum.
pub fn sha256(path: &Path) -> String {
    let out = run("sha256sum", &[&path.display().to_string()], None, &[]);
    assert!(out.status.success());
    text(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Writes `mib` MiB of random bytes to `path`.
pub fn random_file(path: &Path, mib: usize) {
    let out = run(
        "sh",
        &[
            "-c",
            &format!("head -c {}M /dev/urandom > '{}'", mib, path.display()),
        ],
        None,
        &[],
    );
    assert!(out.status.success());
}
