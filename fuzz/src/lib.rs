//! What the fuzz targets share: a masker with every detector, so masking paths run.
#![forbid(unsafe_code)]

use gatehouse_core::mask::Masker;
use gatehouse_core::mask::{MaskPolicy, MaskSpec};

/// A masker that detects card numbers and e-mail addresses anywhere, and masks a `pan` column
/// (built once: compiling its rules is not what is being fuzzed).
pub fn masker() -> &'static Masker {
    static MASKER: std::sync::OnceLock<Masker> = std::sync::OnceLock::new();
    MASKER.get_or_init(build)
}

fn build() -> Masker {
    let specs: Vec<MaskSpec> = [
        serde_json::json!({"name": "pan", "detect": "pan", "style": "keep-last-4"}),
        serde_json::json!({"name": "email", "detect": "email", "style": "redact"}),
        serde_json::json!({"name": "col", "columns": ["cards.pan"], "style": "hash"}),
    ]
    .into_iter()
    .filter_map(|v| serde_json::from_value(v).ok())
    .collect();
    match MaskPolicy::new(specs, vec![7; 32]) {
        Ok(policy) => policy.for_groups(&[]),
        Err(e) => panic!("fuzz mask specs refused: {e}"),
    }
}
