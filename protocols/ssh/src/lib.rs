//! Gatehouse's SSH wire: clients authenticate to the gateway with a token (or a registered key) and
//! the connection name as their user; the gateway logs in to the host with a key only it holds,
//! host key pinned. Every exec line, shell and SFTP operation goes through the same pipeline as
//! SQL: admitted (audited, judged by rules, held for review), relayed, masked, finished.
//!
//! Layout (the same in every wire crate): [`session`] is the entry point, [`SshService::handle`], a
//! client connection from accept to close; [`upstream`] the gateway's own connection and login to
//! the host; `relay` (client → host) and `downstream` (host → client) relay each session channel:
//! every exec, shell and SFTP operation admitted, its output masked, its end finished; [`error`]
//! the crate's error. Then what is the SSH wire's own: `handler` authenticates a connection (token
//! or registered key) and opens its channels (`conn` is what they share); `tunnel` the direct-tcpip
//! channels a connection may allow; [`sftp`] the SFTP decoder and tracker, `sftp_link` what an SFTP
//! channel's two halves share; `transfer` which exec lines are scp/rsync transfers, `scp_stream`
//! the files inside a legacy scp stream, [`file_digest`] the SHA-256 (and small copy) of a file
//! crossing; [`shell_lines`] an interactive shell's typed lines; [`output_mask`] masking across
//! output chunks; `env` the `env` requests passed on; [`host_key`] the gateway's own host key;
//! [`counted`] byte counts.

#![forbid(unsafe_code)]

mod conn;
pub mod counted;
mod downstream;
mod env;
pub mod error;
pub mod file_digest;
mod handler;
pub mod host_key;
pub mod output_mask;
mod relay;
mod scp_stream;
pub mod session;
pub mod sftp;
mod sftp_link;
pub mod shell_lines;
mod transfer;
mod tunnel;
pub mod upstream;

pub use error::SshError;
pub use relay::{REFUSED_EXIT, UNAVAILABLE_EXIT};
pub use session::SshService;

/// The SSH window each side of the relay offers (bytes in flight per channel): large enough
/// that a bulk transfer is not stalled by round trips between the gateway and either peer.
pub const WINDOW_SIZE: u32 = 8 * 1024 * 1024;

/// The largest SSH packet each side of the relay accepts (OpenSSH uses 32 KiB data packets).
pub const MAX_PACKET: u32 = 32 * 1024;

/// Messages a channel buffers between russh and the relay before backpressure reaches TCP.
pub const CHANNEL_BUFFER: usize = 256;

/// The ciphers the gateway negotiates; the client's order decides (RFC 4253 7.1), so the
/// list toward clients only says what is acceptable. Toward clients: ChaCha20-Poly1305 and
/// AES-GCM (aws-lc-rs, what OpenSSH picks) and AES-CTR for clients that have nothing else
/// (paramiko). Toward hosts, where the gateway's order decides: AES-GCM first, which costs the
/// gateway least with AES-NI (it decrypts and re-encrypts every byte it relays).
pub(crate) fn preferred(toward_clients: bool) -> russh::Preferred {
    use russh::cipher;
    let ciphers: &'static [cipher::Name] = if toward_clients {
        &[
            cipher::CHACHA20_POLY1305,
            cipher::AES_128_GCM,
            cipher::AES_256_GCM,
            cipher::AES_128_CTR,
            cipher::AES_256_CTR,
        ]
    } else {
        &[
            cipher::AES_128_GCM,
            cipher::AES_256_GCM,
            cipher::CHACHA20_POLY1305,
            cipher::AES_128_CTR,
            cipher::AES_256_CTR,
        ]
    };
    russh::Preferred {
        cipher: std::borrow::Cow::Borrowed(ciphers),
        ..russh::Preferred::default()
    }
}
