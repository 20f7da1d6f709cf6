//! TEMPORARY (replaced by the mysql-auth branch): answers to an upstream's auth plugins.

use crate::codec::Reader;
use crate::error::MysqlError;

/// An AuthSwitchRequest.
pub struct AuthSwitch {
    /// Plugin.
    pub plugin: String,
    /// Data.
    pub data: Vec<u8>,
}

impl AuthSwitch {
    /// Decodes it.
    pub fn decode(payload: &[u8]) -> Result<Self, MysqlError> {
        let mut r = Reader::new(payload);
        r.u8()?;
        let plugin = String::from_utf8_lossy(r.cstr()?).into_owned();
        let rest = r.rest();
        Ok(Self {
            plugin,
            data: rest.strip_suffix(&[0]).unwrap_or(rest).to_vec(),
        })
    }
}

/// Password + NUL.
pub fn clear_password(password: &[u8]) -> Vec<u8> {
    let mut v = password.to_vec();
    v.push(0);
    v
}

/// RSA.
pub fn rsa_encrypted_password(_: &[u8], _: &[u8], _: &[u8]) -> Result<Vec<u8>, MysqlError> {
    Err(MysqlError::Unsupported("rsa".into()))
}

/// Dispatch.
pub fn answer(plugin: &str, password: &[u8], data: &[u8]) -> Result<Vec<u8>, MysqlError> {
    match plugin {
        "mysql_native_password" => Ok(crate::handshake::native_password(password, data)),
        "mysql_clear_password" => Ok(clear_password(password)),
        other => Err(MysqlError::Unsupported(other.into())),
    }
}
