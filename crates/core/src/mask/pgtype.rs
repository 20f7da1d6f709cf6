//! What a PostgreSQL value is, to masking: text we may rewrite, a number we can only check, or
//! bytes that cannot hold what a detector finds. Plus the decimal rendering of binary integers
//! and `numeric`.

/// A value's kind, from its type OID and format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Text in the client encoding (text-like types, unknown and user types in text format):
    /// masked in place.
    Text,
    /// JSON text (`json` in either format, `jsonb` in text format): masked in place, kept valid.
    Json,
    /// Binary `jsonb`: a version byte (1) then JSON text.
    Jsonb,
    /// A value whose text the client parses as another type (numbers, dates, arrays of them,
    /// `xml`, ...): scanned, and a match makes it NULL — a mask is not a valid value of it.
    Typed,
    /// Binary `int2`/`int4`/`int8` of this many bytes: rendered in decimal, a match makes it NULL.
    Int(usize),
    /// Binary `numeric`: rendered in decimal, a match makes it NULL.
    Numeric,
    /// Binary fixed-layout types that cannot hold a detectable value (bool, float, dates,
    /// uuid, inet, ...): never scanned.
    Inert,
    /// Any other binary value (user types, arrays, `bytea`, ...): its bytes are scanned as they
    /// are, and a match makes it NULL.
    Opaque,
}

impl Kind {
    /// Classifies a column by type OID (0 if unknown) and format.
    pub(crate) fn of(type_oid: u32, binary: bool) -> Self {
        match (type_oid, binary) {
            // text, varchar, bpchar, name, unknown, not known; and arrays of text in text format.
            (25 | 1043 | 1042 | 19 | 705 | 0, _) => Self::Text,
            (1009 | 1015 | 1014 | 1003, false) => Self::Text,
            (114, _) | (3802, false) => Self::Json,
            (3802, true) => Self::Jsonb,
            (21, true) => Self::Int(2),
            (23, true) => Self::Int(4),
            (20, true) => Self::Int(8),
            (1700, true) => Self::Numeric,
            // bool, "char", oid, tid, xid, cid, float4, float8, money, date, time, timetz,
            // timestamp, timestamptz, interval, uuid, inet, cidr, macaddr, macaddr8, bit, varbit,
            // point, lseg, path, box, polygon, line, circle, pg_lsn.
            (
                16 | 18 | 26 | 27 | 28 | 29 | 700 | 701 | 790 | 1082 | 1083 | 1266 | 1114 | 1184
                | 1186 | 2950 | 869 | 650 | 829 | 774 | 1560 | 1562 | 600 | 601 | 602 | 603 | 604
                | 628 | 718 | 3220,
                true,
            ) => Self::Inert,
            (_, true) => Self::Opaque,
            // User-defined types (citext, enums, domains) in text format are text to the client.
            (oid, false) if oid >= FIRST_USER_OID => Self::Text,
            (_, false) => Self::Typed,
        }
    }

    /// Whether detectors see the value's own bytes (not a decimal rendering of them), so a value
    /// shorter than any match can be passed over.
    pub(crate) fn raw(self) -> bool {
        !matches!(self, Self::Int(_) | Self::Numeric)
    }

    /// Whether a whole-value mask can be written into a value of this kind.
    pub(crate) fn writable(self) -> bool {
        matches!(self, Self::Text | Self::Json | Self::Jsonb)
    }
}

/// OIDs from here on are user-defined (PostgreSQL's `FirstNormalObjectId`).
const FIRST_USER_OID: u32 = 16384;

/// Room for a decimal rendering without allocating: any int8, and numerics of up to ~120 digits.
pub(crate) const DECIMAL_CAP: usize = 128;

/// A decimal rendering in a stack buffer, or on the heap when it does not fit.
pub(crate) enum Decimal {
    /// Fits the stack buffer.
    Inline([u8; DECIMAL_CAP], usize),
    /// Too long for it (rare: numerics of more than 120-odd digits).
    Heap(Vec<u8>),
}

impl Decimal {
    /// The rendered text.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Inline(buf, len) => buf.get(..*len).unwrap_or_default(),
            Self::Heap(v) => v,
        }
    }
}

/// Appends bytes to a [`Decimal`], spilling to the heap when full.
struct Writer {
    out: Decimal,
}

impl Writer {
    fn new(estimate: usize) -> Self {
        Self {
            out: if estimate <= DECIMAL_CAP {
                Decimal::Inline([0; DECIMAL_CAP], 0)
            } else {
                Decimal::Heap(Vec::with_capacity(estimate))
            },
        }
    }

    fn push(&mut self, b: u8) {
        match &mut self.out {
            Decimal::Inline(buf, len) => match buf.get_mut(*len) {
                Some(slot) => {
                    *slot = b;
                    *len += 1;
                }
                None => {
                    let mut v = buf.to_vec();
                    v.push(b);
                    self.out = Decimal::Heap(v);
                }
            },
            Decimal::Heap(v) => v.push(b),
        }
    }

    /// Pushes `d` (0..=9999) as exactly `width` digits from the left (4 for a full group).
    fn push_group(&mut self, d: u16, width: usize) {
        let digits = [d / 1000, d / 100 % 10, d / 10 % 10, d % 10];
        for x in digits.iter().take(width) {
            self.push(b'0' + *x as u8);
        }
    }
}

/// Renders a binary big-endian signed integer of 2, 4 or 8 bytes; `None` if the length is wrong.
pub(crate) fn render_int(value: &[u8], size: usize) -> Option<Decimal> {
    let n: i64 = match (size, value) {
        (2, &[a, b]) => i64::from(i16::from_be_bytes([a, b])),
        (4, &[a, b, c, d]) => i64::from(i32::from_be_bytes([a, b, c, d])),
        (8, v) => i64::from_be_bytes(v.try_into().ok()?),
        _ => return None,
    };
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut u = n.unsigned_abs();
    loop {
        i -= 1;
        if let Some(slot) = digits.get_mut(i) {
            *slot = b'0' + (u % 10) as u8;
        }
        u /= 10;
        if u == 0 {
            break;
        }
    }
    let mut w = Writer::new(21);
    if n < 0 {
        w.push(b'-');
    }
    for &b in digits.get(i..).unwrap_or_default() {
        w.push(b);
    }
    Some(w.out)
}

/// Renders a binary `numeric` (ndigits, weight, sign, dscale, then base-10000 digits) as
/// PostgreSQL prints it. `None` if malformed; NaN and infinities render as their names.
pub(crate) fn render_numeric(value: &[u8]) -> Option<Decimal> {
    let word = |i: usize| -> Option<u16> {
        let b = value.get(i * 2..i * 2 + 2)?;
        Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
    };
    let ndigits = usize::from(word(0)?);
    let weight = i64::from(word(1)? as i16);
    let sign = word(2)?;
    let dscale = usize::from(word(3)?);
    if value.len() != 8 + 2 * ndigits {
        return None;
    }
    let special: Option<&[u8]> = match sign {
        0x0000 | 0x4000 => None,
        0xC000 => Some(b"NaN"),
        0xD000 => Some(b"Infinity"),
        0xF000 => Some(b"-Infinity"),
        _ => return None,
    };
    if let Some(name) = special {
        let mut w = Writer::new(name.len());
        name.iter().for_each(|&b| w.push(b));
        return Some(w.out);
    }
    let digit = |i: i64| -> Option<u16> {
        if i < 0 || i as usize >= ndigits {
            return Some(0);
        }
        word(4 + i as usize).filter(|&d| d < 10000)
    };
    for i in 0..ndigits {
        digit(i as i64)?;
    }
    let int_groups = if weight >= 0 { weight as usize + 1 } else { 0 };
    let mut w = Writer::new(2 + int_groups * 4 + 1 + dscale);
    if sign == 0x4000 {
        w.push(b'-');
    }
    if int_groups == 0 {
        w.push(b'0');
    }
    for g in 0..int_groups {
        let d = digit(g as i64)?;
        if g == 0 {
            // The first group without leading zeros.
            let width = match d {
                0..=9 => 1,
                10..=99 => 2,
                100..=999 => 3,
                _ => 4,
            };
            for x in [d / 1000, d / 100 % 10, d / 10 % 10, d % 10]
                .iter()
                .skip(4 - width)
            {
                w.push(b'0' + *x as u8);
            }
        } else {
            w.push_group(d, 4);
        }
    }
    if dscale > 0 {
        w.push(b'.');
        let mut left = dscale;
        let mut g = weight + 1;
        while left > 0 {
            let take = left.min(4);
            w.push_group(digit(g)?, take);
            left -= take;
            g += 1;
        }
    }
    Some(w.out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes a numeric the way PostgreSQL's numeric_send does.
    fn numeric(weight: i16, negative: bool, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(digits.len() as u16).to_be_bytes());
        v.extend_from_slice(&weight.to_be_bytes());
        v.extend_from_slice(&(if negative { 0x4000u16 } else { 0 }).to_be_bytes());
        v.extend_from_slice(&dscale.to_be_bytes());
        for d in digits {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    fn num(weight: i16, negative: bool, dscale: u16, digits: &[u16]) -> String {
        let d = render_numeric(&numeric(weight, negative, dscale, digits)).unwrap();
        String::from_utf8(d.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn integers() {
        let r =
            |v: &[u8], n| String::from_utf8(render_int(v, n).unwrap().as_bytes().to_vec()).unwrap();
        assert_eq!(r(&4111111111111111i64.to_be_bytes(), 8), "4111111111111111");
        assert_eq!(r(&i64::MIN.to_be_bytes(), 8), "-9223372036854775808");
        assert_eq!(r(&0i64.to_be_bytes(), 8), "0");
        assert_eq!(r(&(-42i32).to_be_bytes(), 4), "-42");
        assert_eq!(r(&7i16.to_be_bytes(), 2), "7");
        assert!(render_int(&[1, 2, 3], 8).is_none());
        assert!(render_int(&[1, 2, 3], 4).is_none());
    }

    #[test]
    fn numerics() {
        // 4111111111111111 = 4111 1111 1111 1111 (weight 3).
        assert_eq!(
            num(3, false, 0, &[4111, 1111, 1111, 1111]),
            "4111111111111111"
        );
        assert_eq!(
            num(3, false, 2, &[4111, 1111, 1111, 1111]),
            "4111111111111111.00"
        );
        assert_eq!(num(0, true, 2, &[12, 3400]), "-12.34");
        assert_eq!(num(-1, false, 5, &[12]), "0.00120");
        assert_eq!(num(-2, false, 8, &[12]), "0.00000012");
        assert_eq!(num(1, false, 0, &[7]), "70000");
        assert_eq!(num(0, false, 0, &[]), "0");
        let mut nan = numeric(0, false, 0, &[]);
        nan[4] = 0xC0;
        assert_eq!(render_numeric(&nan).unwrap().as_bytes(), b"NaN");
        // Malformed: wrong length, digit out of range, bad sign.
        assert!(render_numeric(&[0, 1, 0, 0]).is_none());
        assert!(render_numeric(&numeric(0, false, 0, &[10000])).is_none());
        let mut bad = numeric(0, false, 0, &[1]);
        bad[4] = 0x12;
        assert!(render_numeric(&bad).is_none());
        // Too long for the stack buffer: spills, still right.
        let big = num(40, false, 0, &[1]);
        assert_eq!(big.len(), 161);
        assert!(big.starts_with('1') && big[1..].bytes().all(|b| b == b'0'));
    }

    #[test]
    fn kinds() {
        assert_eq!(Kind::of(25, true), Kind::Text);
        assert_eq!(Kind::of(0, true), Kind::Text);
        assert_eq!(Kind::of(3802, true), Kind::Jsonb);
        assert_eq!(Kind::of(3802, false), Kind::Json);
        assert_eq!(Kind::of(20, true), Kind::Int(8));
        assert_eq!(Kind::of(20, false), Kind::Typed);
        assert_eq!(Kind::of(1184, true), Kind::Inert);
        assert_eq!(Kind::of(1184, false), Kind::Typed);
        assert_eq!(Kind::of(17, true), Kind::Opaque);
        assert_eq!(Kind::of(70000, true), Kind::Opaque);
        assert_eq!(Kind::of(70000, false), Kind::Text);
    }
}
