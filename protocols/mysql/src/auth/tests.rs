//! Tests of the plugin answers: each checked as its server checks it, against fixed vectors or
//! against aws-lc-rs (RSA-OAEP decryption).

use super::*;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeySize, OaepPrivateDecryptingKey, PrivateDecryptingKey};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn scramble() -> Vec<u8> {
    (1..=20).collect()
}

#[test]
fn the_native_scramble_is_what_a_server_checks() {
    let scramble = scramble();
    let answer = native_password(b"secret", &scramble);
    // The server keeps SHA1(SHA1(password)) and checks
    // SHA1(answer XOR SHA1(scramble + stored)) == stored.
    let stored = digest(&SHA1, digest(&SHA1, b"secret").as_ref());
    let mut ctx = Context::new(&SHA1);
    ctx.update(&scramble);
    ctx.update(stored.as_ref());
    let stage1 = xor(&answer, ctx.finish().as_ref());
    assert_eq!(digest(&SHA1, &stage1).as_ref(), stored.as_ref());
    assert_eq!(hex(&answer), "b32bb3a583e1340c0a1108d58b1be49781ad8c2f");
    assert!(native_password(b"", &scramble).is_empty());
}

#[test]
fn the_sha2_scramble_is_what_a_server_checks() {
    let scramble = scramble();
    let answer = caching_sha2_password(b"secret", &scramble);
    // The server caches SHA256(SHA256(password)) and checks
    // SHA256(answer XOR SHA256(stored + scramble)) == stored.
    let stored = digest(&SHA256, digest(&SHA256, b"secret").as_ref());
    let mut ctx = Context::new(&SHA256);
    ctx.update(stored.as_ref());
    ctx.update(&scramble);
    let stage1 = xor(&answer, ctx.finish().as_ref());
    assert_eq!(digest(&SHA256, &stage1).as_ref(), stored.as_ref());
    assert_eq!(
        hex(&answer),
        "746ebe205d56a0707acb3e796e834e0dd7b1d61743b26bd5202c7a623230c7c9"
    );
    assert!(caching_sha2_password(b"", &scramble).is_empty());
}

#[test]
fn clear_passwords_end_in_a_nul() {
    assert_eq!(clear_password(b"pw"), b"pw\0");
    assert_eq!(clear_password(b""), b"\0");
}

fn pem(der: &[u8]) -> Vec<u8> {
    let body = BASE64.encode(der);
    let mut out = b"-----BEGIN PUBLIC KEY-----\n".to_vec();
    for line in body.as_bytes().chunks(64) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(b"-----END PUBLIC KEY-----\n");
    out
}

#[test]
fn rsa_encrypted_passwords_decrypt_to_the_password_under_the_scramble() {
    let private = PrivateDecryptingKey::generate(KeySize::Rsa2048).unwrap();
    let der = private.public_key().as_der().unwrap();
    let pem = pem(der.as_ref());
    let private = OaepPrivateDecryptingKey::new(private).unwrap();
    let scramble = scramble();
    // Longer than the scramble (it repeats), the longest a 2048-bit key takes, and empty.
    for password in [
        &b"a password longer than twenty bytes"[..],
        &[b'x'; 213],
        b"",
    ] {
        let sealed = rsa_encrypted_password(password, &scramble, &pem).unwrap();
        assert_eq!(sealed.len(), 256);
        let mut out = vec![0; private.min_output_size()];
        let plain = private
            .decrypt(&OAEP_SHA1_MGF1SHA1, &sealed, &mut out, None)
            .unwrap();
        let opened: Vec<u8> = plain
            .iter()
            .zip(scramble.iter().cycle())
            .map(|(p, s)| p ^ s)
            .collect();
        assert_eq!(opened, clear_password(password));
    }
    // The server's key packet may carry text around the block.
    let mut framed = b"junk\r\n".to_vec();
    framed.extend_from_slice(&pem);
    framed.push(0);
    assert!(rsa_encrypted_password(b"pw", &scramble, &framed).is_ok());

    let too_long = rsa_encrypted_password(&[b'x'; 214], &scramble, &pem).unwrap_err();
    assert!(
        matches!(too_long, MysqlError::PasswordTooLong { len: 214, max: 213 }),
        "{too_long}"
    );
    assert!(matches!(
        rsa_encrypted_password(b"pw", &scramble[..19], &pem),
        Err(MysqlError::AuthChallenge {
            len: 19,
            want: 20,
            ..
        })
    ));
}

#[test]
fn unusable_public_keys_are_refused_with_the_reason() {
    let scramble = scramble();
    let reason = |pem: &[u8]| match rsa_encrypted_password(b"pw", &scramble, pem) {
        Err(MysqlError::PublicKey(reason)) => reason,
        other => panic!("{other:?}"),
    };
    assert!(reason(b"").contains("BEGIN PUBLIC KEY"));
    assert!(
        reason(b"-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----")
            .contains("BEGIN PUBLIC KEY")
    );
    assert!(reason(b"-----BEGIN PUBLIC KEY-----\nAAAA\n").contains("END PUBLIC KEY"));
    assert!(
        reason(b"-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----").contains("base64")
    );
    assert!(reason(&pem(b"not a key")).contains("RSA"));
    // An Ed25519 key is a SubjectPublicKeyInfo, but not RSA.
    let ed = Ed25519KeyPair::generate().unwrap();
    let ed_der = ed.public_key().as_der().unwrap();
    assert!(reason(&pem(ed_der.as_ref())).contains("RSA"));
}
