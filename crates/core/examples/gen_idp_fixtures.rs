//! Writes the keys of the test identity provider: `rs256.pem`, `es256.pem`, `ed25519.pem`
//! (PKCS#8 private keys), their public halves (`*.pub.pem`), and `jwks.json` with the public
//! keys under kids `rs1`, `es1` and `ed1`. Test keys only.
//!
//! ```text
//! cargo run -p gatehouse-core --example gen_idp_fixtures [-- OUT_DIR]   # default fixtures/idp
//! ```

use std::error::Error;
use std::path::PathBuf;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, RsaPublicKeyComponents,
    ECDSA_P256_SHA256_FIXED_SIGNING,
};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::json;

fn main() -> Result<(), Box<dyn Error>> {
    let out = match std::env::args_os().nth(1) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/idp"),
    };
    std::fs::create_dir_all(&out)?;
    let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    let write = |name: &str, label: &str, der: &[u8]| -> std::io::Result<()> {
        std::fs::write(out.join(name), pem(label, der))
    };

    let rsa = RsaKeyPair::generate(KeySize::Rsa2048)?;
    let pkcs8: Pkcs8V1Der<'_> = rsa.as_der()?;
    write("rs256.pem", "PRIVATE KEY", pkcs8.as_ref())?;
    let spki: PublicKeyX509Der<'_> = rsa.public_key().as_der()?;
    write("rs256.pub.pem", "PUBLIC KEY", spki.as_ref())?;
    let components = RsaPublicKeyComponents::<Vec<u8>>::from(rsa.public_key());

    let ec = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)?;
    write("es256.pem", "PRIVATE KEY", ec.to_pkcs8v1()?.as_ref())?;
    let spki: PublicKeyX509Der<'_> = ec.public_key().as_der()?;
    write("es256.pub.pem", "PUBLIC KEY", spki.as_ref())?;
    // Uncompressed point: 0x04, x, y.
    let point = ec.public_key().as_ref();
    let (x, y) = point.get(1..).ok_or("short EC point")?.split_at(32);

    let ed = Ed25519KeyPair::generate()?;
    write("ed25519.pem", "PRIVATE KEY", ed.to_pkcs8v1()?.as_ref())?;
    let spki: PublicKeyX509Der<'_> = ed.public_key().as_der()?;
    write("ed25519.pub.pem", "PUBLIC KEY", spki.as_ref())?;

    let jwks = json!({
        "keys": [
            {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": "rs1",
             "n": b64(&components.n), "e": b64(&components.e)},
            {"kty": "EC", "use": "sig", "alg": "ES256", "kid": "es1", "crv": "P-256",
             "x": b64(x), "y": b64(y)},
            {"kty": "OKP", "use": "sig", "alg": "EdDSA", "kid": "ed1", "crv": "Ed25519",
             "x": b64(ed.public_key().as_ref())},
        ]
    });
    std::fs::write(
        out.join("jwks.json"),
        serde_json::to_string_pretty(&jwks)? + "\n",
    )?;
    println!("wrote test IdP keys to {}", out.display());
    Ok(())
}

/// PEM armour: base64 in lines of 64 characters.
fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    let mut rest = body.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(64));
        text.push_str(line);
        text.push('\n');
        rest = tail;
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}
