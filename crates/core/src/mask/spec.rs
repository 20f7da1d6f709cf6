//! A `[[mask]]` as configured, its validation, and the compiled rule it becomes.

use std::collections::HashSet;
use std::sync::Arc;

use serde::Deserialize;
use thiserror::Error;

use super::detect::Detector;
use super::select::Selector;
use super::style::MaskStyle;

/// One `[[mask]]` table of the configuration, as written. [`super::MaskPolicy::new`] validates
/// it; see the [module docs](super) for what each field means.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskSpec {
    /// The rule's name, unique among masks; audit entries and errors use it.
    pub name: String,
    /// A built-in detector: `"pan"` (Luhn-checked card numbers) or `"email"`.
    #[serde(default)]
    pub detect: Option<String>,
    /// A regular expression (Rust `regex` syntax) whose matches are masked, instead of `detect`.
    #[serde(default)]
    pub regex: Option<String>,
    /// Columns masked whole: `table.column` or a bare `column` (any table), globs `*` and `?`.
    #[serde(default)]
    pub columns: Vec<String>,
    /// How a value is masked: `redact` (the default), `keep-last-4` or `hash`.
    #[serde(default = "default_style")]
    pub style: String,
    /// Identities in any of these groups are not subject to this rule.
    #[serde(default)]
    pub exempt_groups: Vec<String>,
}

/// A `[[mask]]` that cannot be used. Each message names the mask and says what to change.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MaskError {
    /// The name is empty.
    #[error("a [[mask]] has an empty name; give every mask a unique name")]
    EmptyName,
    /// Two masks share a name.
    #[error("mask \"{0}\" is defined twice; mask names must be unique")]
    DuplicateName(String),
    /// Neither a detector nor columns: the rule would mask nothing.
    #[error(
        "mask \"{0}\" masks nothing; set `detect` (\"pan\" or \"email\"), `regex`, or `columns`"
    )]
    Nothing(String),
    /// Both `detect` and `regex`.
    #[error("mask \"{0}\" sets both `detect` and `regex`; keep one (a rule has one detector)")]
    TwoDetectors(String),
    /// `detect` names no built-in detector.
    #[error(
        "mask \"{mask}\": unknown detector \"{detect}\"; use \"pan\" or \"email\", or a `regex`"
    )]
    UnknownDetector {
        /// The mask's name.
        mask: String,
        /// What was written.
        detect: String,
    },
    /// `style` is not one of the styles.
    #[error(
        "mask \"{mask}\": unknown style \"{style}\"; use \"redact\", \"keep-last-4\" or \"hash\""
    )]
    UnknownStyle {
        /// The mask's name.
        mask: String,
        /// What was written.
        style: String,
    },
    /// The regex does not compile, or can match an empty string.
    #[error("mask \"{mask}\": the regex cannot be used: {why}")]
    BadRegex {
        /// The mask's name.
        mask: String,
        /// The compiler's complaint, or what to change.
        why: String,
    },
    /// A column selector is malformed.
    #[error("mask \"{mask}\": column selector \"{selector}\" {why}")]
    BadSelector {
        /// The mask's name.
        mask: String,
        /// The selector as written.
        selector: String,
        /// What is wrong and what to write instead.
        why: String,
    },
    /// A `hash` rule without a usable gateway secret key.
    #[error(
        "mask \"{0}\" uses style \"hash\" but the gateway's hash key is shorter than 16 bytes; \
         configure a secret key of at least 16 random bytes"
    )]
    HashKey(String),
}

/// A validated rule, ready to apply.
#[derive(Debug)]
pub(crate) struct Rule {
    /// The configured name.
    pub(crate) name: Arc<str>,
    /// What it finds in text, if anything.
    pub(crate) detector: Option<Detector>,
    /// Columns it masks whole (empty: none).
    pub(crate) columns: Vec<Selector>,
    /// How it masks.
    pub(crate) style: MaskStyle,
    /// Groups exempt from it.
    pub(crate) exempt_groups: Vec<String>,
}

/// The shortest hash key accepted when a rule hashes.
pub(crate) const MIN_HASH_KEY: usize = 16;

fn default_style() -> String {
    "redact".to_owned()
}

impl Rule {
    /// Validates one spec. `hash_key_len` is the length of the gateway's hash key.
    pub(crate) fn compile(spec: MaskSpec, hash_key_len: usize) -> Result<Self, MaskError> {
        let MaskSpec {
            name,
            detect,
            regex,
            columns,
            style,
            exempt_groups,
        } = spec;
        if name.trim().is_empty() {
            return Err(MaskError::EmptyName);
        }
        let detector = match (detect, regex) {
            (Some(_), Some(_)) => return Err(MaskError::TwoDetectors(name)),
            (Some(detect), None) => match Detector::builtin(&detect) {
                Some(d) => Some(d),
                None => return Err(MaskError::UnknownDetector { mask: name, detect }),
            },
            (None, Some(pattern)) => match Detector::regex(&pattern) {
                Ok(d) => Some(d),
                Err(why) => return Err(MaskError::BadRegex { mask: name, why }),
            },
            (None, None) => None,
        };
        if detector.is_none() && columns.is_empty() {
            return Err(MaskError::Nothing(name));
        }
        let Some(style_parsed) = MaskStyle::parse(&style) else {
            return Err(MaskError::UnknownStyle { mask: name, style });
        };
        if style_parsed == MaskStyle::Hash && hash_key_len < MIN_HASH_KEY {
            return Err(MaskError::HashKey(name));
        }
        let mut selectors = Vec::with_capacity(columns.len());
        for selector in columns {
            match Selector::parse(&selector) {
                Ok(s) => selectors.push(s),
                Err(why) => {
                    return Err(MaskError::BadSelector {
                        mask: name,
                        selector,
                        why: why.to_owned(),
                    })
                }
            }
        }
        Ok(Self {
            name: Arc::from(name),
            detector,
            columns: selectors,
            style: style_parsed,
            exempt_groups,
        })
    }

    /// Whether an identity in `groups` escapes this rule.
    pub(crate) fn exempts(&self, groups: &[String]) -> bool {
        self.exempt_groups.iter().any(|g| groups.contains(g))
    }
}

/// Compiles every spec, refusing duplicates; the first error wins.
pub(crate) fn compile_all(
    specs: Vec<MaskSpec>,
    hash_key_len: usize,
) -> Result<Vec<Rule>, MaskError> {
    let mut seen = HashSet::with_capacity(specs.len());
    let mut rules = Vec::with_capacity(specs.len());
    for spec in specs {
        if !spec.name.is_empty() && !seen.insert(spec.name.clone()) {
            return Err(MaskError::DuplicateName(spec.name));
        }
        rules.push(Rule::compile(spec, hash_key_len)?);
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> MaskSpec {
        MaskSpec {
            name: name.to_owned(),
            detect: None,
            regex: None,
            columns: Vec::new(),
            style: default_style(),
            exempt_groups: Vec::new(),
        }
    }

    fn refused(s: MaskSpec) -> String {
        match Rule::compile(s, 32) {
            Ok(_) => panic!("spec accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_the_documented_toml() {
        let toml = r#"
            name = "pan"
            detect = "pan"
            columns = ["*.card_number"]
            style = "keep-last-4"
            exempt_groups = ["fraud-investigators"]
        "#;
        let s: MaskSpec = toml::from_str(toml).unwrap();
        assert_eq!(s.detect.as_deref(), Some("pan"));
        assert_eq!(s.columns, ["*.card_number"]);
        let minimal: MaskSpec = toml::from_str("name = \"e\"\ndetect = \"email\"").unwrap();
        assert_eq!(minimal.style, "redact");
        assert!(minimal.columns.is_empty() && minimal.exempt_groups.is_empty());
        let unknown =
            toml::from_str::<MaskSpec>("name = \"e\"\ndetect = \"email\"\nstlye = \"hash\"");
        assert!(unknown.unwrap_err().to_string().contains("stlye"));
    }

    #[test]
    fn bad_specs_are_refused_with_what_to_fix() {
        let mut both = spec("both");
        both.detect = Some("pan".into());
        both.regex = Some("x".into());
        assert!(refused(both).contains("mask \"both\" sets both `detect` and `regex`"));

        let mut unknown = spec("ssn");
        unknown.detect = Some("ssn".into());
        let msg = refused(unknown);
        assert!(msg.contains("unknown detector \"ssn\"") && msg.contains("\"pan\" or \"email\""));

        let mut style = spec("s");
        style.detect = Some("pan".into());
        style.style = "keep-last-5".into();
        let msg = refused(style);
        assert!(msg.contains("unknown style \"keep-last-5\"") && msg.contains("keep-last-4"));

        let mut bad = spec("r");
        bad.regex = Some("(unclosed".into());
        assert!(refused(bad).starts_with("mask \"r\": the regex cannot be used"));

        let mut empty = spec("r");
        empty.regex = Some(r"\d*".into());
        assert!(refused(empty).contains("empty string"));

        assert!(refused(spec("none")).contains("mask \"none\" masks nothing"));
        assert!(refused(spec(" ")).contains("empty name"));

        let mut sel = spec("c");
        sel.columns = vec!["public.cards.pan".into()];
        assert!(refused(sel).contains("\"public.cards.pan\""));

        let mut hash = spec("h");
        hash.detect = Some("pan".into());
        hash.style = "hash".into();
        assert!(matches!(Rule::compile(hash, 8), Err(MaskError::HashKey(_))));
    }

    #[test]
    fn duplicate_names_are_refused() {
        let mut a = spec("pan");
        a.detect = Some("pan".into());
        let err = compile_all(vec![a.clone(), a], 0).unwrap_err();
        assert_eq!(err, MaskError::DuplicateName("pan".into()));
    }
}
