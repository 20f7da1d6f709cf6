//! The `[[oidc]]` configuration of one trusted identity provider.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// A signature algorithm a token may use.
///
/// Only public-key algorithms exist here: `none` and the shared-secret HS* family cannot even be
/// configured, so no allow-list can let them in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum JwtAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (an RSA key, 2048 to 8192 bits).
    #[serde(rename = "RS256")]
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    #[serde(rename = "ES256")]
    Es256,
    /// Ed25519 (`EdDSA` with an OKP key on curve Ed25519).
    #[serde(rename = "EdDSA")]
    EdDsa,
}

impl JwtAlgorithm {
    /// Every supported algorithm: the default allow-list.
    pub const ALL: [Self; 3] = [Self::Rs256, Self::Es256, Self::EdDsa];

    /// The JOSE name (`RS256`, `ES256`, `EdDSA`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// Parses a JOSE name; `None` for anything but the three supported algorithms.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

impl fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One trusted identity provider, as the `[[oidc]]` table configures it.
///
/// Exactly one of `jwks_file` and `jwks_url` must be set; [`OidcVerifier::new`] checks the rest.
///
/// [`OidcVerifier::new`]: super::OidcVerifier::new
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSpec {
    /// The issuer, compared byte for byte with a token's `iss` claim.
    pub issuer: String,
    /// The audience a token must name in its `aud` claim (a string or one of an array).
    pub audience: String,
    /// The namespace of this issuer's identities: a token's identity is `name:sub`, so two
    /// issuers' subjects (or a subject and a gateway token's identity, which cannot hold a
    /// `:`) never share a name. Default: the issuer without its scheme.
    #[serde(default)]
    pub name: Option<String>,
    /// A JWKS document on disk; a relative path is resolved against the configuration's
    /// directory. Read at startup, and read again when a token names a key it lacks.
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// Where the issuer publishes its JWKS (`https://…`; `http://…` only to a loopback
    /// address). Fetched at first use
    /// (or by [`OidcVerifier::warm_up`]) and again when a token names a key it lacks.
    ///
    /// [`OidcVerifier::warm_up`]: super::OidcVerifier::warm_up
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// PEM file of the CA certificates that sign the `https` JWKS endpoint, for a private CA.
    /// When set it replaces the system's roots for this issuer.
    #[serde(default)]
    pub jwks_ca: Option<PathBuf>,
    /// The claim that lists the identity's groups (default `groups`). A name that is not a
    /// top-level claim and contains dots is followed as a path (`realm_access.roles`).
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Algorithms accepted from this issuer (default all of `RS256`, `ES256`, `EdDSA`).
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<JwtAlgorithm>,
}

impl OidcSpec {
    /// The namespace of this issuer's identities: `name`, or the issuer without its scheme
    /// and trailing slash (`idp.example.com/realms/corp`), so two realms of one server differ.
    pub fn namespace(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        let rest = self
            .issuer
            .split_once("://")
            .map_or(self.issuer.as_str(), |(_, r)| r);
        rest.trim_end_matches('/').to_owned()
    }

    /// An issuer whose keys are in a JWKS file, with the default groups claim and algorithms.
    pub fn with_jwks_file(issuer: &str, audience: &str, jwks_file: impl Into<PathBuf>) -> Self {
        Self {
            jwks_file: Some(jwks_file.into()),
            ..Self::bare(issuer, audience)
        }
    }

    /// An issuer whose keys are published at a URL, with the default groups claim and
    /// algorithms.
    pub fn with_jwks_url(issuer: &str, audience: &str, jwks_url: &str) -> Self {
        Self {
            jwks_url: Some(jwks_url.to_owned()),
            ..Self::bare(issuer, audience)
        }
    }

    fn bare(issuer: &str, audience: &str) -> Self {
        Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            name: None,
            jwks_file: None,
            jwks_url: None,
            jwks_ca: None,
            groups_claim: default_groups_claim(),
            algorithms: default_algorithms(),
        }
    }
}

fn default_groups_claim() -> String {
    "groups".to_owned()
}

fn default_algorithms() -> Vec<JwtAlgorithm> {
    JwtAlgorithm::ALL.to_vec()
}
