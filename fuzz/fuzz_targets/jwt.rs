//! A JWT presented as a password, checked against a JWKS: the fixture's keys for the first
//! half of the cases, and (every other input) a JWKS document made of the input itself. A
//! hostile token or key set is refused with an error, never a panic, and never verified.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use gatehouse_core::oidc::{OidcSpec, OidcVerifier};
use libfuzzer_sys::fuzz_target;

const ISSUER: &str = "https://idp.gatehouse.test";

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"))
    })
}

fn fixture_verifier() -> &'static OidcVerifier {
    static V: OnceLock<OidcVerifier> = OnceLock::new();
    V.get_or_init(|| {
        let jwks = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/idp/jwks.json");
        OidcVerifier::new(
            vec![OidcSpec::with_jwks_file(ISSUER, "gatehouse", jwks)],
            Path::new("/"),
        )
        .unwrap_or_else(|e| panic!("fixture JWKS: {e}"))
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if OidcVerifier::looks_like_jwt(&text) {
        let verified = runtime().block_on(fixture_verifier().verify(&text));
        assert!(verified.is_err(), "a fuzzed token verified: {text}");
    }
    if data.first().is_some_and(|b| b % 2 == 1) {
        let dir = std::env::temp_dir().join(format!("gh-fuzz-jwks-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join("jwks.json");
        if std::fs::write(&file, data).is_ok() {
            let _ = OidcVerifier::new(
                vec![OidcSpec::with_jwks_file(ISSUER, "gatehouse", &file)],
                &dir,
            );
        }
    }
});
