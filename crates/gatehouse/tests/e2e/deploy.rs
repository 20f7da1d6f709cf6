//! The scale-out deployment as shipped (`Dockerfile`, `compose.yaml`, `deploy/`): the files
//! agree with each other, and the binary runs the compose configuration as two instances —
//! the compose services' host names mapped to this machine's servers — serving PostgreSQL,
//! MySQL and SSH clients, each instance ready, one audit trail with both chains. (No
//! container runtime runs here; this checks what the image would run.)

use std::path::{Path, PathBuf};

use crate::mysql_support::mysql;
use crate::ssh_support::{ssh, Sshd};
use crate::support::*;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn text(path: &str) -> String {
    read(&repo(path))
}

#[test]
fn the_image_the_compose_file_and_the_configuration_agree() {
    let dockerfile = text("Dockerfile");
    let compose = text("compose.yaml");
    let config = text("deploy/gatehouse.toml");
    // The image runs the configuration compose mounts.
    assert!(
        dockerfile.contains(r#"CMD ["--config", "/etc/gatehouse/gatehouse.toml", "serve"]"#),
        "{dockerfile}"
    );
    assert!(compose.contains("./deploy/gatehouse.toml:/etc/gatehouse/gatehouse.toml:ro"));
    assert!(
        compose.contains("./deploy/demo/gateway_ed25519:/etc/gatehouse/demo/gateway_ed25519:ro")
    );
    assert!(config.contains("/etc/gatehouse/demo/gateway_ed25519"));
    // Two gateways, each its own instance (its host name), one store whose credentials are
    // the configuration's.
    for gw in ["gw-a", "gw-b"] {
        assert!(compose.contains(&format!("  {gw}:\n")), "{gw}");
        assert!(compose.contains(&format!("hostname: {gw}")), "{gw}");
    }
    assert!(
        !config.contains("\ninstance"),
        "instances are named by their host names"
    );
    // postgres:15 serves no TLS by default: the configuration must not ask for it (off
    // loopback the store's default is verify-full).
    assert!(config.contains(
        "state = \"postgres://gatehouse:gatehouse@store:5432/gatehouse?sslmode=disable\""
    ));
    for line in [
        "POSTGRES_USER: gatehouse",
        "POSTGRES_PASSWORD: gatehouse",
        "POSTGRES_DB: gatehouse",
    ] {
        assert!(compose.contains(line), "{line}");
    }
    // The volumes the image declares are the ones the configuration writes to.
    for dir in ["/var/lib/gatehouse/state", "/var/lib/gatehouse/recordings"] {
        assert!(dockerfile.contains(dir) && config.contains(dir) && compose.contains(dir));
    }
    // The ports the image exposes are the ones the configuration listens on.
    for port in ["5432", "3306", "2222", "8443"] {
        assert!(config.contains(&format!("\"0.0.0.0:{port}\"")), "{port}");
        assert!(dockerfile.contains(port), "{port}");
    }
    // The demo host's key is the one pinned.
    let host_pub = text("deploy/demo/sshd_host_ed25519_key.pub");
    let pinned: String = host_pub
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(config.contains(&format!("host_key = \"{pinned}\"")));
    assert_eq!(
        text("deploy/demo/authorized_keys").trim(),
        text("deploy/demo/gateway_ed25519.pub").trim()
    );
}

/// The compose configuration with this machine standing in for the compose network.
fn as_here(config: &str, state: &str, instance: &str, shared: &Path, sshd: &Sshd) -> String {
    let shared_dir = |name: &str| shared.join(name).display().to_string();
    let mut out = config
        .replace("postgres://gatehouse:gatehouse@store:5432/gatehouse", state)
        .replace("/var/lib/gatehouse/state", &shared_dir("state"))
        .replace("/var/lib/gatehouse/recordings", &shared_dir("recordings"))
        .replace(
            "/etc/gatehouse/demo/gateway_ed25519",
            &repo("deploy/demo/gateway_ed25519").display().to_string(),
        )
        .replace("upstream-pg:5432", "127.0.0.1:5432")
        .replace("upstream-mariadb:3306", "127.0.0.1:3306")
        .replace("upstream-ssh:22", &format!("127.0.0.1:{}", sshd.port))
        .replace("database = \"demo\"", "database = \"gh_deploy_demo\"")
        .replace("username = \"deploy\"", "username = \"root\"");
    for port in ["5432", "3306", "2222", "8443"] {
        out = out.replace(&format!("\"0.0.0.0:{port}\""), "\"127.0.0.1:0\"");
    }
    // The container's host name.
    out.replace(
        "[gateway]\n",
        &format!("[gateway]\ninstance = {instance:?}\n"),
    )
}

#[test]
fn the_compose_configuration_runs_as_two_instances_on_one_store() {
    scratch_db("gh_deploy_demo");
    let made = run(
        "mysql",
        &[
            "-h",
            "127.0.0.1",
            "-uroot",
            "-e",
            "CREATE DATABASE IF NOT EXISTS gh_deploy_demo",
        ],
        None,
        &[],
    );
    assert!(made.status.success(), "{made:?}");
    let sshd = Sshd::start_with_keys(
        &repo("deploy/demo/sshd_host_ed25519_key"),
        &repo("deploy/demo/gateway_ed25519"),
    );
    let store = gatehouse_audit::testing::fresh_postgres("postgres://postgres@127.0.0.1:5432/")
        .expect("a store database");
    let shared = tempfile::tempdir().unwrap();
    let config = text("deploy/gatehouse.toml");
    let a = Gateway::start_toml(
        &as_here(&config, &store, "gw-a", shared.path(), &sshd),
        &store,
    );
    let b = Gateway::start_toml(
        &as_here(&config, &store, "gw-b", shared.path(), &sshd),
        &store,
    );
    let token = a.token("demo", &["admin"]);

    let (ok, out, err) = psql(
        &a.dsn("demo-pg", &token),
        &["-At", "-c", "SELECT 40 + 2"],
        None,
    );
    assert!(ok && out.trim() == "42", "{out} {err}");
    let my = mysql(
        &b,
        "demo-mariadb",
        &token,
        &["-N", "-e", "SELECT 6 * 7"],
        None,
    );
    assert!(my.status.success(), "{my:?}");
    assert_eq!(String::from_utf8_lossy(&my.stdout).trim(), "42");
    let sh = ssh(
        &a,
        "demo-ssh",
        &token,
        &["echo", "from-the-demo-host"],
        None,
    );
    assert!(sh.status.success(), "{sh:?}");
    assert!(String::from_utf8_lossy(&sh.stdout).contains("from-the-demo-host"));

    // Each instance is ready (HTTPS: the admin API off loopback needs TLS, as compose has it).
    for gw in [&a, &b] {
        let url = format!("https://127.0.0.1:{}/readyz", gw.admin_port);
        let out = run("curl", &["-sk", &url], None, &[]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "ready",
            "{out:?}"
        );
    }
    let rows = b.audit_until(|r| {
        !with_statement(r, "40 + 2").is_empty()
            && !with_statement(r, "6 * 7").is_empty()
            && !with_statement(r, "from-the-demo-host").is_empty()
    });
    for needle in ["40 + 2", "6 * 7", "from-the-demo-host"] {
        assert_eq!(
            with_statement(&rows, needle).len(),
            1,
            "{needle}: {rows:#?}"
        );
    }
    let report: serde_json::Value =
        serde_json::from_str(&a.cli(&["audit", "verify", "--json"])).unwrap();
    assert_eq!(report["problems"].as_array().unwrap().len(), 0, "{report}");
    let chains = report["chains"].to_string();
    assert!(
        chains.contains("gw-a") && chains.contains("gw-b"),
        "{report}"
    );
}
