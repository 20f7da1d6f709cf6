//! Bind parameter values rendered as text for the audit trail.
//!
//! Text-format values are kept as sent, read in the session's client encoding. Binary values are decoded for the common types when
//! the statement's parameter types are known (declared in Parse or reported by the server's
//! ParameterDescription); anything else is shown as `\x` hex, like PostgreSQL shows bytea.

use gatehouse_core::Param;

use crate::encoding::ClientEncoding;

/// Well-known type OIDs.
mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const OID: u32 = 26;
    pub const JSON: u32 = 114;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const UNKNOWN: u32 = 705;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;
}

/// Renders one parameter. `format` is 0 (text) or 1 (binary); `type_oid` 0 if unknown. Text,
/// in either format, is in the session's client encoding (the server converts it from there).
pub fn render(value: Option<&[u8]>, format: i16, type_oid: u32, encoding: ClientEncoding) -> Param {
    let value = value?;
    if format == 0 {
        return Some(encoding.decode(value).into_owned());
    }
    Some(render_binary(value, type_oid, encoding).unwrap_or_else(|| hex(value)))
}

fn render_binary(v: &[u8], type_oid: u32, encoding: ClientEncoding) -> Option<String> {
    let text = |v: &[u8]| match encoding {
        ClientEncoding::Utf8 => std::str::from_utf8(v).ok().map(str::to_owned),
        other => Some(other.decode(v).into_owned()),
    };
    Some(match type_oid {
        oid::BOOL => match v {
            [0] => "false".into(),
            [_] => "true".into(),
            _ => return None,
        },
        oid::INT2 => i16::from_be_bytes(v.try_into().ok()?).to_string(),
        oid::INT4 => i32::from_be_bytes(v.try_into().ok()?).to_string(),
        oid::OID => u32::from_be_bytes(v.try_into().ok()?).to_string(),
        oid::INT8 => i64::from_be_bytes(v.try_into().ok()?).to_string(),
        oid::FLOAT4 => f32::from_be_bytes(v.try_into().ok()?).to_string(),
        oid::FLOAT8 => f64::from_be_bytes(v.try_into().ok()?).to_string(),
        oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME | oid::UNKNOWN | oid::JSON => text(v)?,
        oid::JSONB => text(v.strip_prefix(&[1])?)?,
        oid::UUID => {
            let h = hex(v);
            let h = h.strip_prefix("\\x")?;
            if h.len() != 32 {
                return None;
            }
            format!(
                "{}-{}-{}-{}-{}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..]
            )
        }
        oid::TIMESTAMP | oid::TIMESTAMPTZ => {
            // Microseconds since 2000-01-01 UTC.
            let us = i64::from_be_bytes(v.try_into().ok()?);
            let unix_us = us.checked_add(946_684_800_000_000)?;
            let t = std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_micros(
                u64::try_from(unix_us).ok()?,
            ))?;
            humantime_rfc3339(t)
        }
        oid::BYTEA => return None,
        _ => return None,
    })
}

fn humantime_rfc3339(t: std::time::SystemTime) -> String {
    gatehouse_core::time::display(t)
}

/// Bytes shown as PostgreSQL shows bytea: `\x` and hex.
fn hex(v: &[u8]) -> String {
    format!("\\x{}", gatehouse_core::identity::hex(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timestamp_past_year_9999_renders_without_panicking() {
        // The pg_wire fuzz target's first crash: a binary timestamp parameter of the largest
        // value panicked while being rendered for the audit trail.
        for oid in [1114, 1184] {
            let far = 300_000_000_000_000_000i64;
            let shown = render(Some(&far.to_be_bytes()), 1, oid, ClientEncoding::Utf8);
            assert!(shown.is_some_and(|s| s.contains("after the epoch")));
            assert!(render(Some(&i64::MAX.to_be_bytes()), 1, oid, ClientEncoding::Utf8).is_some());
        }
    }

    #[test]
    fn renders_text_binary_and_null() {
        assert_eq!(render(None, 0, 0, ClientEncoding::Utf8), None);
        assert_eq!(
            render(Some(b"42"), 0, 23, ClientEncoding::Utf8).as_deref(),
            Some("42")
        );
        assert_eq!(
            render(Some(&42i32.to_be_bytes()), 1, 23, ClientEncoding::Utf8).as_deref(),
            Some("42")
        );
        assert_eq!(
            render(Some(&(-7i64).to_be_bytes()), 1, 20, ClientEncoding::Utf8).as_deref(),
            Some("-7")
        );
        assert_eq!(
            render(Some(b"abc"), 1, 25, ClientEncoding::Utf8).as_deref(),
            Some("abc")
        );
        assert_eq!(
            render(Some(&[1]), 1, 16, ClientEncoding::Utf8).as_deref(),
            Some("true")
        );
        assert_eq!(
            render(Some(&[0xde, 0xad]), 1, 17, ClientEncoding::Utf8).as_deref(),
            Some("\\xdead")
        );
        // A wrong-sized int falls back to hex rather than guessing.
        assert_eq!(
            render(Some(&[0, 1]), 1, 23, ClientEncoding::Utf8).as_deref(),
            Some("\\x0001")
        );
        assert_eq!(
            render(Some(&[0u8; 8]), 1, 1184, ClientEncoding::Utf8).as_deref(),
            Some("2000-01-01T00:00:00.000Z")
        );
        // Text in the session's encoding, in either format.
        let latin9 = ClientEncoding::from_name("LATIN9");
        assert_eq!(
            render(Some(b"caf\xe9"), 0, 25, latin9).as_deref(),
            Some("café")
        );
        assert_eq!(render(Some(b"\xa4"), 1, 25, latin9).as_deref(), Some("€"));
    }
}
