//! Tests of the plugin answers: each checked as its server checks it, against fixed vectors or
//! against aws-lc-rs (RSA-OAEP decryption, RFC 8032 Ed25519), and the AuthSwitchRequest codec.

use super::*;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeySize, OaepPrivateDecryptingKey, PrivateDecryptingKey};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};

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

#[test]
fn ed25519_with_a_32_byte_password_is_rfc_8032_ed25519_with_that_seed() {
    for (seed, message) in [([0u8; 32], [0u8; 32]), ([7; 32], [0xA5; 32])]
        .into_iter()
        .chain((1u8..=8).map(|i| {
            let seed: [u8; 32] = core::array::from_fn(|j| (j as u8).wrapping_mul(31) ^ i);
            let message: [u8; 32] = core::array::from_fn(|j| (j as u8).wrapping_mul(i) ^ 0x5C);
            (seed, message)
        }))
    {
        let standard = Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
        let ours = ed25519_password(&seed, &message).unwrap();
        assert_eq!(
            ours,
            standard.sign(&message).as_ref(),
            "seed {}",
            hex(&seed)
        );
        assert_eq!(
            Ed25519Key::from_password(&seed).public.as_bytes(),
            standard.public_key().as_ref()
        );
    }
}

#[test]
fn ed25519_signatures_of_passwords_of_any_length_verify_under_their_key() {
    let message = [0x42; 32];
    for password in [
        &b""[..],
        b"x",
        b"ed-secret-1",
        &[b'p'; 31],
        &[b'p'; 33],
        &[b'q'; 200],
    ] {
        let signature = ed25519_password(password, &message).unwrap();
        assert_eq!(signature.len(), 64);
        let public = Ed25519Key::from_password(password).public;
        UnparsedPublicKey::new(&ED25519, public.as_bytes())
            .verify(&message, &signature)
            .unwrap();
        assert!(UnparsedPublicKey::new(&ED25519, public.as_bytes())
            .verify(&[0x43; 32], &signature)
            .is_err());
    }
    // The key MariaDB 10.11 stores (base64, without its padding) for
    // `IDENTIFIED VIA ed25519 USING PASSWORD('ed-secret-1')`.
    assert_eq!(
        BASE64.encode(Ed25519Key::from_password(b"ed-secret-1").public.as_bytes()),
        "l38YcgG1Zqi5tek+d+mactqeAhfYrScmxRmke3dkzhc="
    );
    let short = ed25519_password(b"pw", &[0; 20]).unwrap_err();
    assert!(matches!(
        short,
        MysqlError::AuthChallenge {
            len: 20,
            want: 32,
            ..
        }
    ));
    assert!(short.to_string().contains("client_ed25519"), "{short}");
}

#[test]
fn auth_switch_requests_decode_with_the_scramble_nul_stripped_and_other_data_whole() {
    let scramble = scramble();
    let with_nul = |name: &str, data: &[u8], nul: bool| {
        let mut p = vec![0xFE];
        p.extend_from_slice(name.as_bytes());
        p.push(0);
        p.extend_from_slice(data);
        if nul {
            p.push(0);
        }
        p
    };
    let mut ed_challenge = [0x11; 32];
    ed_challenge[31] = 0;
    let cases: Vec<(Vec<u8>, &str, Vec<u8>)> = vec![
        (
            with_nul(NATIVE_PASSWORD, &scramble, true),
            NATIVE_PASSWORD,
            scramble.clone(),
        ),
        (
            with_nul(CACHING_SHA2_PASSWORD, &scramble, true),
            CACHING_SHA2_PASSWORD,
            scramble.clone(),
        ),
        (
            with_nul(SHA256_PASSWORD, &scramble, true),
            SHA256_PASSWORD,
            scramble.clone(),
        ),
        // Without the NUL (not what servers send), the scramble is taken as it is.
        (
            with_nul(NATIVE_PASSWORD, &scramble, false),
            NATIVE_PASSWORD,
            scramble.clone(),
        ),
        // The ed25519 challenge has no terminator: a last zero byte is part of it.
        (
            with_nul(CLIENT_ED25519, &ed_challenge, false),
            CLIENT_ED25519,
            ed_challenge.to_vec(),
        ),
        (with_nul(CLEAR_PASSWORD, b"", false), CLEAR_PASSWORD, vec![]),
        (b"\xFEdialog".to_vec(), "dialog", vec![]),
        (vec![0xFE], "mysql_old_password", vec![]),
    ];
    for (payload, plugin, data) in cases {
        let switch = AuthSwitch::decode(&payload).unwrap();
        assert_eq!(
            switch,
            AuthSwitch {
                plugin: plugin.into(),
                data
            },
            "{payload:?}"
        );
    }
    for bad in [&b""[..], b"\x00\x00", b"\xFE\x00abc"] {
        assert!(
            matches!(AuthSwitch::decode(bad), Err(MysqlError::Malformed(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn answers_are_picked_by_plugin_name_and_unknown_plugins_are_named() {
    let scramble = scramble();
    let challenge = [9; 32];
    assert_eq!(
        answer(NATIVE_PASSWORD, b"pw", &scramble).unwrap(),
        native_password(b"pw", &scramble)
    );
    assert_eq!(
        answer(CACHING_SHA2_PASSWORD, b"pw", &scramble).unwrap(),
        caching_sha2_password(b"pw", &scramble)
    );
    assert_eq!(answer(CLEAR_PASSWORD, b"pw", b"").unwrap(), b"pw\0");
    assert_eq!(
        answer(CLIENT_ED25519, b"pw", &challenge).unwrap(),
        ed25519_password(b"pw", &challenge).unwrap()
    );
    let switch = AuthSwitch {
        plugin: CLIENT_ED25519.into(),
        data: challenge.to_vec(),
    };
    assert_eq!(
        switch.answer(b"pw").unwrap(),
        ed25519_password(b"pw", &challenge).unwrap()
    );

    for plugin in [NATIVE_PASSWORD, CACHING_SHA2_PASSWORD] {
        let e = answer(plugin, b"pw", &scramble[..8]).unwrap_err();
        assert!(
            matches!(
                e,
                MysqlError::AuthChallenge {
                    len: 8,
                    want: 20,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains(plugin), "{e}");
    }
    for plugin in ["mysql_old_password", SHA256_PASSWORD, "dialog", ""] {
        let e = answer(plugin, b"pw", &scramble).unwrap_err();
        assert!(matches!(&e, MysqlError::UnsupportedAuthPlugin(p) if p == plugin));
        let text = e.to_string();
        assert!(text.contains(&format!("{plugin:?}")), "{text}");
        for supported in [
            NATIVE_PASSWORD,
            CACHING_SHA2_PASSWORD,
            CLEAR_PASSWORD,
            CLIENT_ED25519,
        ] {
            assert!(text.contains(supported), "{text}");
        }
    }
}
