//! URL parsing and response framing of the JWKS fetch.

use super::*;

#[test]
fn urls_parse() {
    let t = FetchTarget::new("http://127.0.0.1:8080/jwks?x=1#frag", None).unwrap();
    assert_eq!(
        (
            t.host.as_str(),
            t.port,
            t.authority.as_str(),
            t.path.as_str()
        ),
        ("127.0.0.1", 8080, "127.0.0.1:8080", "/jwks?x=1")
    );
    let t = FetchTarget::new("HTTP://[::1]", None).unwrap();
    assert_eq!((t.host.as_str(), t.port, t.path.as_str()), ("::1", 80, "/"));
    let t = FetchTarget::new("http://localhost?a", None).unwrap();
    assert_eq!(t.path, "/?a");
    // Keys that decide who logs in never come over plain HTTP from another host.
    for cleartext in [
        "http://idp.test/jwks",
        "http://10.0.0.1/jwks",
        "http://[fe80::1]/",
    ] {
        let err = FetchTarget::new(cleartext, None).err().unwrap_or_default();
        assert!(err.contains("https://"), "{cleartext}: {err}");
    }
    assert!(FetchTarget::new("https://idp.test/jwks", None).is_ok());
    for bad in [
        "ftp://x/",
        "http://",
        "http://:80/",
        "http://x:0/",
        "http://x:99999/",
        "http://u:p@x/",
        "http://x/a b",
        "http://x/a\r\nInjected: 1",
        "http://::1/",
    ] {
        assert!(FetchTarget::new(bad, None).is_err(), "{bad}");
    }
    assert!(FetchTarget::new("http://127.0.0.1/", Some(Path::new("ca.pem"))).is_err());
    let err = FetchTarget::named("url", "http://hooks.test/", None)
        .err()
        .unwrap_or_default();
    assert!(err.starts_with("url ") && err.contains("https://"), "{err}");
}

#[test]
fn a_post_takes_any_2xx_and_a_get_only_200() {
    let accepted = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(parse_response(accepted, false, true).unwrap(), Some(vec![]));
    let err = parse_response(accepted, false, false).unwrap_err();
    assert!(err.contains("expected 200"), "{err}");
    let err = parse_response(b"HTTP/1.1 500 Oops\r\n\r\n", true, true).unwrap_err();
    assert!(err.contains("500") && err.contains("2xx"), "{err}");
}

#[test]
fn responses_frame() {
    let ok = |raw: &[u8], eof| parse_response(raw, eof, false).unwrap();
    assert_eq!(
        ok(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}extra",
            false
        ),
        Some(b"{}".to_vec())
    );
    assert_eq!(
        ok(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n{}", false),
        None
    );
    assert_eq!(
        ok(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\n{\r\n1;x=y\r\n}\r\n0\r\n\r\n",
            false
        ),
        Some(b"{}".to_vec())
    );
    assert_eq!(
        ok(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n",
            false
        ),
        None
    );
    assert_eq!(
        ok(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\n\r\n{}",
            true
        ),
        Some(b"{}".to_vec())
    );
    assert_eq!(ok(b"HTTP/1.0 200 OK\r\n\r\n{", false), None);
    for (raw, eof) in [
        (&b"HTTP/1.1 404 Not Found\r\n\r\n"[..], false),
        (b"HTTP/1.1 301 Moved\r\nLocation: x\r\n\r\n", false),
        (b"SSH-2.0-OpenSSH\r\n\r\n", false),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n{}", true),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 9999999\r\n\r\n", false),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n", false),
        (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n", false),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            false,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{xy",
            false,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffff\r\n",
            false,
        ),
        (b"HTTP/1.1 200 OK\r\n", true),
    ] {
        assert!(
            parse_response(raw, eof, false).is_err(),
            "{}",
            String::from_utf8_lossy(raw)
        );
    }
}
