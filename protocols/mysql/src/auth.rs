//! The answers the gateway gives an upstream MySQL or MariaDB server when it logs in with the
//! gateway-held password: one pure function per authentication plugin, the server's request to
//! change plugin ([`AuthSwitch`]) and [`answer`], which picks the function by the plugin's name.
//! No I/O: the upstream login drives the exchange and calls these.

use aws_lc_rs::digest::{digest, Context, SHA1_FOR_LEGACY_USE_ONLY as SHA1, SHA256, SHA512};
use aws_lc_rs::rsa::{OaepPublicEncryptingKey, PublicEncryptingKey, OAEP_SHA1_MGF1SHA1};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::scalar::clamp_integer;
use curve25519_dalek::{EdwardsPoint, Scalar};

use crate::error::MysqlError;

/// `mysql_native_password` (MySQL before 8, MariaDB's default): a SHA-1 scramble.
pub const NATIVE_PASSWORD: &str = "mysql_native_password";
/// `caching_sha2_password` (MySQL 8's default): a SHA-256 scramble, then, when the server's
/// cache misses, the password itself over TLS or under the server's RSA key.
pub const CACHING_SHA2_PASSWORD: &str = "caching_sha2_password";
/// `sha256_password` (MySQL): the password itself over TLS or under the server's RSA key.
/// [`answer`] does not take it: its first answer depends on the connection and the key.
pub const SHA256_PASSWORD: &str = "sha256_password";
/// `mysql_clear_password`: the password itself.
pub const CLEAR_PASSWORD: &str = "mysql_clear_password";
/// `client_ed25519` (MariaDB's `ed25519` plugin): an Ed25519 signature of the server's challenge.
pub const CLIENT_ED25519: &str = "client_ed25519";

/// Bytes of the scramble of `mysql_native_password`, `caching_sha2_password` and
/// `sha256_password`.
pub const SCRAMBLE_LEN: usize = 20;
/// Bytes of the challenge `client_ed25519` signs.
pub const ED25519_CHALLENGE_LEN: usize = 32;

/// `caching_sha2_password`, client to server after [`SHA2_PERFORM_FULL_AUTHENTICATION`]
/// without TLS: send me your RSA public key (the server answers AuthMoreData with its PEM).
pub const SHA2_REQUEST_PUBLIC_KEY: u8 = 2;
/// `caching_sha2_password`, server to client in AuthMoreData (0x01) after the scramble: the
/// cache matched, an OK packet follows.
pub const SHA2_FAST_AUTH_SUCCESS: u8 = 3;
/// `caching_sha2_password`, server to client in AuthMoreData (0x01) after the scramble: send
/// the password, as [`clear_password`] over TLS or else as [`rsa_encrypted_password`].
pub const SHA2_PERFORM_FULL_AUTHENTICATION: u8 = 4;

/// A server's AuthSwitchRequest: `0xFE`, the plugin's name (NUL-terminated), the plugin's
/// first data (its challenge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSwitch {
    /// The plugin the server asks the client to answer with.
    pub plugin: String,
    /// The plugin's challenge, without the NUL the scramble plugins append.
    pub data: Vec<u8>,
}

impl AuthSwitch {
    /// Decodes an AuthSwitchRequest payload (header 0xFE).
    ///
    /// The scramble of `mysql_native_password`, `caching_sha2_password` and `sha256_password`
    /// arrives as 20 bytes and a NUL (MariaDB and MySQL both send 21; their clients insist on
    /// it); that NUL is stripped. Every other plugin's data is kept whole: `client_ed25519`'s
    /// 32-byte challenge has no terminator and may end in a zero byte. A bare 0xFE (the
    /// pre-4.1 request for `mysql_old_password`) decodes as that plugin with no data, for
    /// [`answer`] to refuse by name.
    pub fn decode(payload: &[u8]) -> Result<Self, MysqlError> {
        let Some((&0xFE, rest)) = payload.split_first() else {
            return Err(MysqlError::Malformed("not an AuthSwitchRequest"));
        };
        if rest.is_empty() {
            return Ok(Self {
                plugin: "mysql_old_password".into(),
                data: Vec::new(),
            });
        }
        let mut parts = rest.splitn(2, |b| *b == 0);
        let name = parts.next().unwrap_or_default();
        let data = parts.next().unwrap_or_default();
        if name.is_empty() {
            return Err(MysqlError::Malformed(
                "AuthSwitchRequest without a plugin name",
            ));
        }
        let plugin = String::from_utf8_lossy(name).into_owned();
        let data = if [NATIVE_PASSWORD, CACHING_SHA2_PASSWORD, SHA256_PASSWORD].contains(&&*plugin)
        {
            data.strip_suffix(&[0]).unwrap_or(data)
        } else {
            data
        };
        Ok(Self {
            plugin,
            data: data.to_vec(),
        })
    }

    /// The answer to this request with `password`: [`answer`] for its plugin and data.
    pub fn answer(&self, password: &[u8]) -> Result<Vec<u8>, MysqlError> {
        answer(&self.plugin, password, &self.data)
    }
}

/// The answer to a plugin's challenge (a greeting's scramble with its plugin, or an
/// [`AuthSwitch`]'s data), by the plugin's name: `mysql_native_password`,
/// `caching_sha2_password`, `mysql_clear_password` or `client_ed25519`. Any other plugin is an
/// error that names it; a challenge of the wrong length for its plugin is an error too.
///
/// For `caching_sha2_password` this is the first step only: the server then sends AuthMoreData
/// (0x01) with [`SHA2_FAST_AUTH_SUCCESS`] (an OK follows) or
/// [`SHA2_PERFORM_FULL_AUTHENTICATION`] (see there).
pub fn answer(plugin: &str, password: &[u8], data: &[u8]) -> Result<Vec<u8>, MysqlError> {
    match plugin {
        NATIVE_PASSWORD => {
            check_len(NATIVE_PASSWORD, data, SCRAMBLE_LEN)?;
            Ok(native_password(password, data))
        }
        CACHING_SHA2_PASSWORD => {
            check_len(CACHING_SHA2_PASSWORD, data, SCRAMBLE_LEN)?;
            Ok(caching_sha2_password(password, data))
        }
        CLEAR_PASSWORD => Ok(clear_password(password)),
        CLIENT_ED25519 => ed25519_password(password, data),
        other => Err(MysqlError::UnsupportedAuthPlugin(other.to_owned())),
    }
}

/// The `mysql_native_password` answer to a scramble:
/// `SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password)))` (empty for an empty password).
pub fn native_password(password: &[u8], scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = digest(&SHA1, password);
    let stage2 = digest(&SHA1, stage1.as_ref());
    let mut ctx = Context::new(&SHA1);
    ctx.update(scramble);
    ctx.update(stage2.as_ref());
    xor(stage1.as_ref(), ctx.finish().as_ref())
}

/// The `caching_sha2_password` answer to a scramble (its fast path):
/// `SHA256(password) XOR SHA256(SHA256(SHA256(password)) + scramble)` — unlike
/// `mysql_native_password`, the scramble comes last (MySQL's `Generate_scramble`). Empty for an
/// empty password.
pub fn caching_sha2_password(password: &[u8], scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = digest(&SHA256, password);
    let stage2 = digest(&SHA256, stage1.as_ref());
    let mut ctx = Context::new(&SHA256);
    ctx.update(stage2.as_ref());
    ctx.update(scramble);
    xor(stage1.as_ref(), ctx.finish().as_ref())
}

/// The password for `caching_sha2_password`'s full authentication (and `sha256_password`)
/// without TLS: `(password + NUL) XOR scramble` (the scramble repeated), encrypted with RSA-OAEP
/// (SHA-1, MGF1 with SHA-1) under the server's public key, given as PEM
/// (`-----BEGIN PUBLIC KEY-----`, an X.509 SubjectPublicKeyInfo, as the server sends it).
///
/// Errors: a scramble that is not 20 bytes, a key that is not such a PEM block of a 2048- to
/// 8192-bit RSA key, a password too long for the key (at most the key's bytes less 43).
pub fn rsa_encrypted_password(
    password: &[u8],
    scramble: &[u8],
    public_key_pem: &[u8],
) -> Result<Vec<u8>, MysqlError> {
    check_len(
        "caching_sha2_password or sha256_password",
        scramble,
        SCRAMBLE_LEN,
    )?;
    let der = pem_public_key(public_key_pem)?;
    let key = PublicEncryptingKey::from_der(&der).map_err(|_| {
        MysqlError::PublicKey("not a SubjectPublicKeyInfo of a 2048- to 8192-bit RSA key")
    })?;
    let key = OaepPublicEncryptingKey::new(key)
        .map_err(|_| MysqlError::PublicKey("not usable for RSA-OAEP"))?;
    // OAEP with SHA-1 takes at most the key's bytes less 2 * 20 + 2.
    let max = key.ciphertext_size().saturating_sub(42);
    let mut plain: Vec<u8> = password.iter().copied().chain([0]).collect();
    if plain.len() > max {
        return Err(MysqlError::PasswordTooLong {
            len: password.len(),
            max: max.saturating_sub(1),
        });
    }
    for (p, s) in plain.iter_mut().zip(scramble.iter().cycle()) {
        *p ^= s;
    }
    let mut out = vec![0; key.ciphertext_size()];
    let len = key
        .encrypt(&OAEP_SHA1_MGF1SHA1, &plain, &mut out, None)
        .map_err(|_| MysqlError::Encryption)?
        .len();
    out.truncate(len);
    Ok(out)
}

/// The `mysql_clear_password` answer: the password and a NUL.
pub fn clear_password(password: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(password.len() + 1);
    out.extend_from_slice(password);
    out.push(0);
    out
}

/// The `client_ed25519` answer (MariaDB's `ed25519` plugin): the 64-byte Ed25519 signature
/// `R || S` of the server's 32-byte challenge under a key whose seed is the whole password,
/// of any length, as MariaDB's `crypto_sign` (ref10) computes it: `az = SHA512(password)`,
/// `a = clamp(az[..32])`, `A = a·B`, `r = SHA512(az[32..] || M) mod l`, `R = r·B`,
/// `k = SHA512(R || A || M) mod l`, `S = r + k·a mod l`. For a password of exactly 32 bytes
/// this is RFC 8032's Ed25519 with that seed.
///
/// Errors: a challenge that is not 32 bytes (MariaDB's client refuses it too).
pub fn ed25519_password(password: &[u8], message: &[u8]) -> Result<Vec<u8>, MysqlError> {
    check_len(CLIENT_ED25519, message, ED25519_CHALLENGE_LEN)?;
    let key = Ed25519Key::from_password(password);
    let r = Scalar::from_bytes_mod_order_wide(&sha512(&[&key.prefix, message]));
    let big_r = EdwardsPoint::mul_base(&r).compress();
    let k = Scalar::from_bytes_mod_order_wide(&sha512(&[
        big_r.as_bytes(),
        key.public.as_bytes(),
        message,
    ]));
    let s = r + k * key.secret;
    let mut signature = Vec::with_capacity(64);
    signature.extend_from_slice(big_r.as_bytes());
    signature.extend_from_slice(s.as_bytes());
    Ok(signature)
}

/// MariaDB's Ed25519 key of a password.
struct Ed25519Key {
    /// `a`: the clamped lower half of `SHA512(password)`, reduced mod l (the same multiple of
    /// the base point, which has order l).
    secret: Scalar,
    /// The upper half of `SHA512(password)`, hashed with the message for the nonce.
    prefix: [u8; 32],
    /// `A = a·B`, the key MariaDB stores (base64) for the user.
    public: CompressedEdwardsY,
}

impl Ed25519Key {
    fn from_password(password: &[u8]) -> Self {
        let az = sha512(&[password]);
        let mut lower = [0; 32];
        let mut prefix = [0; 32];
        lower.copy_from_slice(&az[..32]);
        prefix.copy_from_slice(&az[32..]);
        let secret = Scalar::from_bytes_mod_order(clamp_integer(lower));
        let public = EdwardsPoint::mul_base(&secret).compress();
        Self {
            secret,
            prefix,
            public,
        }
    }
}

/// SHA-512 of the parts, one after the other.
fn sha512(parts: &[&[u8]]) -> [u8; 64] {
    let mut ctx = Context::new(&SHA512);
    for part in parts {
        ctx.update(part);
    }
    let mut out = [0; 64];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The DER inside a PEM `PUBLIC KEY` block.
fn pem_public_key(pem: &[u8]) -> Result<Vec<u8>, MysqlError> {
    const BEGIN: &[u8] = b"-----BEGIN PUBLIC KEY-----";
    const END: &[u8] = b"-----END PUBLIC KEY-----";
    let body = find(pem, BEGIN)
        .and_then(|at| pem.get(at + BEGIN.len()..))
        .ok_or(MysqlError::PublicKey("no -----BEGIN PUBLIC KEY----- block"))?;
    let base64 = find(body, END)
        .and_then(|at| body.get(..at))
        .ok_or(MysqlError::PublicKey("no -----END PUBLIC KEY----- line"))?;
    let base64: Vec<u8> = base64
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    BASE64
        .decode(base64)
        .map_err(|_| MysqlError::PublicKey("the PEM block is not base64"))
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The bytewise XOR of two equally long digests.
fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(a, b)| a ^ b).collect()
}

/// Refuses a challenge that is not the length its plugin defines.
fn check_len(plugin: &'static str, data: &[u8], want: usize) -> Result<(), MysqlError> {
    if data.len() == want {
        Ok(())
    } else {
        Err(MysqlError::AuthChallenge {
            plugin,
            len: data.len(),
            want,
        })
    }
}

#[cfg(test)]
mod tests;
