//! `gatehouse serve`: opens the store, bootstraps the first admin token, starts the listeners
//! and runs until SIGINT/SIGTERM, then drains.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_audit::{Approvals, FileRecordings, NewToken, Store};
use gatehouse_core::{Gateway, GatewayParts, TokenId};
use gatehouse_mysql::{MysqlConfig, MysqlService};
use gatehouse_postgres::{PgConfig, PgService, RelayLimits};
use gatehouse_ssh::SshService;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::admin::{self, AdminState};
use crate::config::Config;
use crate::error::CliError;
use crate::limits::ConnectionLimits;
use crate::tls;
use crate::webhook::Webhooks;

/// How often the registry is polled for revocations (a revoked token's sessions end within it).
const REVOCATION_POLL: Duration = Duration::from_millis(500);

/// How often the metrics recorder folds in what was recorded since.
const METRICS_UPKEEP: Duration = Duration::from_secs(5);

/// How often `serve` enforces retention.
const RETENTION_EVERY: Duration = Duration::from_secs(6 * 3600);

/// How long live sessions get to say goodbye and record their end after a shutdown signal.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// Runs the gateway.
pub async fn run(config: Config) -> Result<(), CliError> {
    if config.gateway.retention_days < 365 {
        tracing::warn!(
            retention_days = config.gateway.retention_days,
            "retention below PCI DSS 10.5.1's minimum of 12 months (forced by retention_force)"
        );
    }
    let metrics = admin::health::install_recorder();
    let store = config.open_store()?;
    let state_dir = config.state_dir()?;
    tracing::info!(store = %store.location().display(), instance = store.instance(), "store opened");
    let recordings = Arc::new(FileRecordings::start(&config.recordings_dir())?);
    let connections = config.connections()?;
    let first_admin = bootstrap_admin(&store)?;

    let approvals = Approvals::open(&store)?;
    admin::evidence::clear_scratch(&state_dir);
    for dir in [state_dir.as_path(), config.recordings_dir().as_path()] {
        keep_private(dir);
    }
    let audit = Arc::new(store.start_writer()?);
    let store = Arc::new(store);
    let gateway = Gateway::new(GatewayParts {
        connections,
        tokens: store.clone(),
        audit: audit.clone(),
        recordings: recordings.clone(),
        rules: config.rules()?,
        approvals: Arc::new(approvals.clone()),
        oidc: config.oidc()?,
        masks: config.masks(mask_key(&state_dir)?)?,
    })?;
    let warm = gateway.clone();
    tokio::spawn(async move { warm.warm_up().await });

    let mut pg_local = None;
    let mut tasks = JoinSet::new();
    let mut sessions = JoinSet::new();
    if let Some(addr) = &config.listen.postgres {
        let (listener, local) = bind(addr).await?;
        let service = PgService::new(
            gateway.clone(),
            PgConfig {
                tls: Some(tls::acceptor(&config, &state_dir)?),
                allow_plaintext_tokens: local.ip().is_loopback(),
                limits: RelayLimits::default(),
                login_timeout: config.limits.login_timeout,
            },
        );
        // Scripts and tests read this line to find the port when the config says :0.
        eprintln!("gatehouse: postgres listening on {local}");
        pg_local = Some(local);
        let refusing = service.clone();
        tasks.spawn(accept_loop(
            listener,
            local,
            ConnectionLimits::new(&config.limits),
            move |tcp, peer| {
                let service = service.clone();
                async move { service.handle(tcp, peer).await }
            },
            {
                let service = refusing.clone();
                move |tcp, why| {
                    let service = service.clone();
                    async move { service.refuse_busy(tcp, &why).await }
                }
            },
        ));
    }
    if let Some(addr) = &config.listen.mysql {
        let (listener, local) = bind(addr).await?;
        let service = MysqlService::new(
            gateway.clone(),
            MysqlConfig {
                tls: Some(tls::acceptor(&config, &state_dir)?),
                allow_plaintext_tokens: local.ip().is_loopback(),
                login_timeout: config.limits.login_timeout,
                ..MysqlConfig::default()
            },
        );
        // The greeting shows clients the upstream's version: learn it before the first one.
        if let Some(upstream) = config.mysql_upstreams().next() {
            service.learn_upstream(&upstream).await;
        }
        eprintln!("gatehouse: mysql listening on {local}");
        tasks.spawn(accept_loop(
            listener,
            local,
            ConnectionLimits::new(&config.limits),
            move |tcp, peer| {
                let service = service.clone();
                async move { service.handle(tcp, peer).await }
            },
            |tcp, why| async move { gatehouse_mysql::refuse_busy(tcp, &why).await },
        ));
    }
    if let Some(addr) = &config.listen.admin {
        let (listener, local) = bind(addr).await?;
        if !local.ip().is_loopback() && !config.admin.tls {
            return Err(CliError::Config(format!(
                "[listen] admin = {addr:?} is not a loopback address, and the admin API would \
                 carry tokens over plain HTTP: set `tls = true` under [admin] (it uses the [tls] \
                 certificate), or listen on 127.0.0.1"
            )));
        }
        eprintln!("gatehouse: admin listening on {local}");
        let state = AdminState {
            gateway: gateway.clone(),
            store: store.clone(),
            approvals: approvals.clone(),
            admin_groups: Arc::from(config.admin.groups.clone()),
            approver_groups: Arc::from(config.approver_groups()),
            health: admin::health::Health {
                metrics: metrics.clone(),
                writer: (*audit).clone(),
            },
            recordings: Arc::from(config.recordings_dir().as_path()),
            // Off loopback the listener needs `tls = true` (checked above).
            secure_cookies: config.admin.tls,
            config: Arc::new(config.clone()),
            last_verify: Arc::default(),
            inbox: admin::inbox::InboxFeed::start(approvals.clone()),
        };
        let scheme = if config.admin.tls { "https" } else { "http" };
        let console_url = config
            .admin
            .console_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{local}"));
        let webhooks = Webhooks::new(&config.webhook, &config.review_rules(), &console_url)?;
        if !webhooks.is_empty() {
            tasks.spawn(webhooks.run(approvals.clone()));
        }
        if config.admin.tls {
            let acceptor = tls::acceptor(&config, &state_dir)?;
            let listener = admin::tls_listener::TlsListener::new(listener, acceptor)
                .map_err(|e| CliError::Config(format!("admin listener: {e}")))?;
            tasks.spawn(admin::serve_tls(listener, state));
        } else {
            tasks.spawn(admin::serve(listener, state));
        }
    }
    if config.listen.admin.is_none() && !config.approver_groups().is_empty() {
        tracing::warn!(
            "review rules are configured but [listen] admin is not: nobody can approve, so held \
             commands will only time out"
        );
    }
    if let Some(addr) = &config.listen.ssh {
        let (listener, local) = bind(addr).await?;
        // Made once and kept beside the store, so clients can pin it across restarts.
        let host_key =
            gatehouse_ssh::host_key::load_or_create(&state_dir.join("ssh_host_ed25519_key"))
                .map_err(|e| CliError::Config(e.to_string()))?;
        let service = SshService::new(gateway.clone(), host_key)
            .with_login_timeout(config.limits.login_timeout);
        eprintln!("gatehouse: ssh listening on {local}");
        tasks.spawn(accept_loop(
            listener,
            local,
            ConnectionLimits::new(&config.limits),
            move |tcp, peer| {
                let service = service.clone();
                async move { service.handle(tcp, peer).await }
            },
            |tcp, _why| async move {
                // SSH has no error before its key exchange: the connection is closed, as
                // OpenSSH's MaxStartups does.
                drop(tcp);
            },
        ));
    }
    if tasks.is_empty() {
        return Err(CliError::Config(
            "[listen] names no listener this build can serve".into(),
        ));
    }
    if let Some((id, secret)) = &first_admin {
        print_first_admin(id, secret, pg_local, &config);
    }
    // Revocations and decisions made elsewhere (another instance, the CLI) arrive at once on
    // a PostgreSQL store (its notifications), and by polling in any case.
    let revoked = Arc::new(tokio::sync::Notify::new());
    {
        let (revoked, approvals) = (revoked.clone(), approvals.clone());
        store.watch(move |kind| match kind {
            gatehouse_audit::events::REVOKED => revoked.notify_one(),
            gatehouse_audit::events::DECIDED => approvals.wake(),
            _ => {}
        })?;
    }
    let watcher = gateway.clone();
    sessions.spawn(async move { watcher.watch_revocations(REVOCATION_POLL, &revoked).await });
    // The recorder keeps histogram samples until they are folded in: every few seconds, so
    // its memory stays bounded whether or not anything scrapes /metrics.
    let upkeep = metrics.clone();
    sessions.spawn(async move {
        let mut tick = tokio::time::interval(METRICS_UPKEEP);
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    sessions.spawn(retention_schedule(config.clone(), store.clone()));

    shutdown_signal().await;
    tracing::info!(
        live = gateway.live_sessions(),
        "shutting down: no new connections; ending live sessions"
    );
    tasks.abort_all();
    sessions.abort_all();
    gateway.shut_down();
    let deadline = tokio::time::Instant::now() + DRAIN_GRACE;
    while gateway.live_sessions() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = tokio::time::timeout(DRAIN_GRACE, audit.flush()).await;
    recordings.flush();
    Ok(())
}

/// Binds a listener and tells the address it got (the config may say port 0).
async fn bind(addr: &str) -> Result<(TcpListener, SocketAddr), CliError> {
    let failed = |source| CliError::Listen {
        addr: addr.to_owned(),
        source,
    };
    let listener = TcpListener::bind(addr).await.map_err(failed)?;
    let local = listener.local_addr().map_err(failed)?;
    Ok((listener, local))
}

/// Enforces retention at start and every [`RETENTION_EVERY`].
async fn retention_schedule(config: Config, store: Arc<Store>) {
    let config = Arc::new(config);
    let mut tick = tokio::time::interval(RETENTION_EVERY);
    loop {
        tick.tick().await;
        let (config, store) = (config.clone(), store.clone());
        let run = tokio::task::spawn_blocking(move || {
            crate::cli::retention::purge(&config, &store, std::time::SystemTime::now(), "serve")
        })
        .await;
        match run {
            Ok(Ok(report)) if report.entries + report.sessions > 0 => tracing::info!(
                sessions = report.sessions,
                entries = report.entries,
                cutoff = %report.cutoff,
                "retention purged evidence past its period"
            ),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "retention run failed"),
            Err(e) => tracing::error!(error = %e, "retention task failed"),
        }
    }
}

/// Accepts connections and serves each in a task of its own.
async fn accept_loop<F, Fut, R, RFut>(
    listener: TcpListener,
    local: SocketAddr,
    limits: Arc<ConnectionLimits>,
    handle: F,
    refuse: R,
) where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
    R: Fn(TcpStream, String) -> RFut,
    RFut: std::future::Future<Output = ()> + Send + 'static,
{
    // Refusals are told at most this many at a time; past that a connection is just closed,
    // so a flood cannot turn the telling into work without bound.
    let telling = Arc::new(tokio::sync::Semaphore::new(64));
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => match limits.admit(peer.ip()) {
                Ok(place) => {
                    let serve = handle(tcp, peer);
                    tokio::spawn(async move {
                        serve.await;
                        drop(place);
                    });
                }
                Err(why) => {
                    tracing::warn!(listener = %local, %peer, %why, "connection refused");
                    let Ok(turn) = telling.clone().try_acquire_owned() else {
                        continue;
                    };
                    let told = refuse(tcp, why);
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(Duration::from_secs(5), told).await;
                        drop(turn);
                    });
                }
            },
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!(listener = %local, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// The secret key of the `hash` mask style: made once and kept in the state directory, so a
/// value hashes the same across restarts (joins on masked values line up) but cannot be
/// recomputed by anyone who only has the audit store.
fn mask_key(state_dir: &std::path::Path) -> Result<Vec<u8>, CliError> {
    let path = state_dir.join("mask-hash.key");
    match std::fs::read(&path) {
        Ok(key) if key.len() >= 32 => return Ok(key),
        Ok(_) => {
            return Err(CliError::Config(format!(
            "{} is shorter than 32 bytes; remove it to make a new one (hashed values will change)",
            path.display()
        )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(CliError::Config(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    }
    let key = gatehouse_core::identity::random_hex(32)
        .map_err(|e| CliError::Config(e.to_string()))?
        .into_bytes();
    std::fs::create_dir_all(state_dir)
        .and_then(|()| gatehouse_core::private_file::write_private(&path, &key))
        .map_err(|e| CliError::Config(format!("cannot write {}: {e}", path.display())))?;
    Ok(key)
}

/// Makes a state directory made before the gateway set its umask readable by its own user
/// only (new files are, by the umask `main` sets). A directory it cannot change (not its
/// own) is left as it is, with a warning.
fn keep_private(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(dir) else {
        return;
    };
    if meta.permissions().mode() & 0o077 == 0 {
        return;
    }
    if let Err(e) = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)) {
        tracing::warn!(dir = %dir.display(), error = %e, "state directory is readable by others");
    }
}

/// On an empty store, issues the first admin token (identity `admin`, group `admin`).
fn bootstrap_admin(store: &Store) -> Result<Option<(TokenId, String)>, CliError> {
    if store.token_count()? > 0 {
        return Ok(None);
    }
    let issued = store.create_token(&NewToken {
        identity: "admin".into(),
        groups: vec!["admin".into()],
        connections: Vec::new(),
        expires_at: None,
        created_by: "bootstrap".into(),
    })?;
    Ok(Some(issued))
}

/// Prints the first admin token once, with a psql line to paste (using the port actually bound).
fn print_first_admin(id: &TokenId, secret: &str, pg: Option<SocketAddr>, config: &Config) {
    println!("Gatehouse: a fresh store; created the first admin token ({id}).");
    println!("It is shown only this once and stored only as a hash:\n");
    println!("    {secret}\n");
    let connection = config
        .connection
        .iter()
        .find(|c| c.protocol == "postgres" && c.groups.iter().any(|g| g == "admin"));
    if let (Some(conn), Some(addr)) = (connection, pg) {
        println!("Connect with:\n");
        println!(
            "    psql \"host={} port={} dbname={} user=admin password={secret}\"\n",
            addr.ip(),
            addr.port(),
            conn.name
        );
    }
    let mysql = config
        .connection
        .iter()
        .find(|c| c.protocol == "mysql" && c.groups.iter().any(|g| g == "admin"));
    if let (Some(conn), Some(addr)) = (mysql, &config.listen.mysql) {
        let (host, port) = addr.rsplit_once(':').unwrap_or((addr.as_str(), "13306"));
        println!(
            "    mysql -h {host} -P {port} -u admin -p{secret} --ssl {}\n",
            conn.name
        );
    }
    let ssh = config
        .connection
        .iter()
        .find(|c| c.protocol == "ssh" && c.groups.iter().any(|g| g == "admin"));
    if let (Some(conn), Some(addr)) = (ssh, &config.listen.ssh) {
        let (host, port) = addr.rsplit_once(':').unwrap_or((addr.as_str(), "12222"));
        println!(
            "    ssh -p {port} {}@{host}    (the token is the password)\n",
            conn.name
        );
    }
    if let Some(addr) = &config.listen.admin {
        let scheme = if config.admin.tls { "https" } else { "http" };
        println!("The web console (sign in with the token): {scheme}://{addr}/\n");
    }
    println!("Issue tokens for services with `gatehouse token create --identity NAME --group G`.");
}
