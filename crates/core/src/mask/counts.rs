//! How many values were masked, per column or per free-text label: the audit entry's masking
//! record.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Values masked per label: a result column (`table.column`, or `column` when the table is not
/// known) or a free-text label given to [`super::Masker::mask_text`] (`statement`, `param $1`,
/// `error`...). Each value counts once, however many matches it held. Serialises as a JSON object
/// `{"label": count}` in label order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaskCounts {
    counts: BTreeMap<Arc<str>, u64>,
}

impl MaskCounts {
    /// No values masked yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `n` masked values under `label` (nothing if `n` is 0).
    pub fn add(&mut self, label: &str, n: u64) {
        if n == 0 {
            return;
        }
        match self.counts.get_mut(label) {
            Some(c) => *c += n,
            None => {
                self.counts.insert(Arc::from(label), n);
            }
        }
    }

    /// [`add`](Self::add) with a label already shared: no copy of it.
    pub(crate) fn add_shared(&mut self, label: &Arc<str>, n: u64) {
        match self.counts.get_mut(&**label) {
            Some(c) => *c += n,
            None => {
                self.counts.insert(Arc::clone(label), n);
            }
        }
    }

    /// Values masked under `label`.
    pub fn get(&self, label: &str) -> u64 {
        self.counts.get(label).copied().unwrap_or(0)
    }

    /// Values masked in all.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// Whether nothing was masked.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Each label with its count, in label order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        self.counts.iter().map(|(k, v)| (&**k, *v))
    }

    /// Adds every count of `other` to these.
    pub fn merge(&mut self, other: &MaskCounts) {
        for (label, n) in &other.counts {
            self.add_shared(label, *n);
        }
    }

    /// Forgets every count (keeps nothing allocated for labels).
    pub fn clear(&mut self) {
        self.counts.clear();
    }
}

impl Serialize for MaskCounts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.counts.len()))?;
        for (label, n) in &self.counts {
            map.serialize_entry(&**label, n)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for MaskCounts {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CountsVisitor;
        impl<'de> Visitor<'de> for CountsVisitor {
            type Value = MaskCounts;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of label to count")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<MaskCounts, A::Error> {
                let mut counts = MaskCounts::new();
                while let Some((label, n)) = access.next_entry::<String, u64>()? {
                    counts.add(&label, n);
                }
                Ok(counts)
            }
        }
        deserializer.deserialize_map(CountsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_merges_and_serialises() {
        let mut a = MaskCounts::new();
        assert!(a.is_empty());
        a.add("cards.pan", 2);
        a.add("statement", 1);
        a.add("cards.pan", 1);
        a.add("nothing", 0);
        assert_eq!(a.get("cards.pan"), 3);
        assert_eq!(a.get("nothing"), 0);
        assert_eq!(a.total(), 4);
        let mut b = MaskCounts::new();
        b.add("statement", 5);
        b.add("error", 1);
        a.merge(&b);
        assert_eq!(
            a.iter().collect::<Vec<_>>(),
            [("cards.pan", 3), ("error", 1), ("statement", 6)]
        );
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, r#"{"cards.pan":3,"error":1,"statement":6}"#);
        let back: MaskCounts = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a);
        a.clear();
        assert!(a.is_empty() && a.total() == 0);
    }
}
