//! Values crossing the seam: parameters ([`Value`], from [`ToValue`]) and columns ([`Cell`],
//! read as [`FromCell`]). The store keeps integers (times in microseconds), text and NULL.

use std::borrow::Cow;

/// A parameter's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// NULL.
    Null,
    /// An integer.
    Int(i64),
    /// Text.
    Text(&'a str),
}

/// What may be a parameter.
pub trait ToValue {
    /// The value to bind.
    fn to_value(&self) -> Value<'_>;
}

macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value<'_> {
                // Counters and times beyond i64 do not occur; saturate rather than wrap.
                Value::Int(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
    )*};
}
int_value!(i64, i32, u32, u64, usize);

impl ToValue for bool {
    fn to_value(&self) -> Value<'_> {
        Value::Int(i64::from(*self))
    }
}

impl ToValue for str {
    fn to_value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl ToValue for String {
    fn to_value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl ToValue for std::sync::Arc<str> {
    fn to_value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl ToValue for std::borrow::Cow<'_, str> {
    fn to_value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value<'_> {
        (**self).to_value()
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value<'_> {
        match self {
            Some(v) => v.to_value(),
            None => Value::Null,
        }
    }
}

impl ToValue for Value<'_> {
    fn to_value(&self) -> Value<'_> {
        *self
    }
}

/// A cell of a row built for [`super::Db::insert_rows`] (and one row's insert): its text
/// borrowed from the write it comes from where it can be, so building a row copies no text
/// that is already there (this is on every statement's ingest).
#[derive(Debug, Clone, PartialEq)]
pub enum Param<'a> {
    /// NULL.
    Null,
    /// An integer.
    Int(i64),
    /// Text.
    Text(Cow<'a, str>),
}

impl<'a> Param<'a> {
    /// Text, or NULL.
    pub fn text(text: Option<&'a str>) -> Self {
        text.map_or(Self::Null, Self::borrowed)
    }

    /// Text borrowed from the write.
    pub fn borrowed(text: &'a str) -> Self {
        Self::Text(Cow::Borrowed(text))
    }

    /// Text made for the row (a list's JSON, say).
    pub fn owned(text: String) -> Self {
        Self::Text(Cow::Owned(text))
    }

    /// An integer, or NULL.
    pub fn int(n: Option<i64>) -> Self {
        n.map_or(Self::Null, Self::Int)
    }
}

impl From<Option<String>> for Param<'_> {
    /// Text made for the row, or NULL.
    fn from(text: Option<String>) -> Self {
        text.map_or(Self::Null, Self::owned)
    }
}

impl ToValue for Param<'_> {
    fn to_value(&self) -> Value<'_> {
        match self {
            Self::Null => Value::Null,
            Self::Int(n) => Value::Int(*n),
            Self::Text(t) => Value::Text(t),
        }
    }
}

/// A column's value as read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    /// NULL.
    Null,
    /// An integer (a boolean reads as 0 or 1).
    Int(i64),
    /// A floating-point number.
    Real(f64),
    /// Text.
    Text(&'a str),
}

/// What a column may be read as.
pub trait FromCell: Sized {
    /// The value, or what was found instead.
    fn from_cell(cell: Cell<'_>) -> Result<Self, String>;
}

fn unexpected(want: &str, cell: Cell<'_>) -> String {
    format!("expected {want}, found {cell:?}")
}

impl FromCell for i64 {
    fn from_cell(cell: Cell<'_>) -> Result<Self, String> {
        match cell {
            Cell::Int(n) => Ok(n),
            other => Err(unexpected("an integer", other)),
        }
    }
}

macro_rules! int_from_cell {
    ($($t:ty),*) => {$(
        impl FromCell for $t {
            fn from_cell(cell: Cell<'_>) -> Result<Self, String> {
                let n = i64::from_cell(cell)?;
                <$t>::try_from(n).map_err(|_| format!("{n} is out of range"))
            }
        }
    )*};
}
int_from_cell!(i32, u32, u64, usize);

impl FromCell for bool {
    fn from_cell(cell: Cell<'_>) -> Result<Self, String> {
        i64::from_cell(cell).map(|n| n != 0)
    }
}

impl FromCell for f64 {
    fn from_cell(cell: Cell<'_>) -> Result<Self, String> {
        match cell {
            Cell::Real(x) => Ok(x),
            // Integers widen, as SQLite's own conversion does.
            Cell::Int(n) => Ok(n as f64),
            other => Err(unexpected("a number", other)),
        }
    }
}

impl FromCell for String {
    fn from_cell(cell: Cell<'_>) -> Result<Self, String> {
        match cell {
            Cell::Text(t) => Ok(t.to_owned()),
            other => Err(unexpected("text", other)),
        }
    }
}

impl<T: FromCell> FromCell for Option<T> {
    fn from_cell(cell: Cell<'_>) -> Result<Self, String> {
        match cell {
            Cell::Null => Ok(None),
            other => T::from_cell(other).map(Some),
        }
    }
}
