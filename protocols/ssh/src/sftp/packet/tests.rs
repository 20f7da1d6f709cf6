//! Hand-built packets in, typed requests and responses out.

use super::*;
use crate::sftp::testing::Body;

/// ATTRS with every field: size 1024, uid/gid 1000/1001, mode 0100644, times 10/20, one
/// extended pair.
fn full_attrs(b: Body) -> Body {
    b.u32(Attrs::SIZE | Attrs::UIDGID | Attrs::PERMISSIONS | Attrs::ACMODTIME | Attrs::EXTENDED)
        .u64(1024)
        .u32(1000)
        .u32(1001)
        .u32(0o100644)
        .u32(10)
        .u32(20)
        .u32(1)
        .string("x@example.com")
        .string("data")
}

const FULL: Attrs = Attrs {
    size: Some(1024),
    uid_gid: Some((1000, 1001)),
    permissions: Some(0o100644),
    times: Some((10, 20)),
    extended: 1,
};

fn req(p: &[u8]) -> Request<'_> {
    Request::parse(p).unwrap()
}

fn resp(p: &[u8]) -> Response<'_> {
    Response::parse(p).unwrap()
}

#[test]
fn init() {
    let p = Body::new(SSH_FXP_INIT).u32(3).packet();
    assert_eq!(req(&p), Request::Init { version: 3 });
    assert_eq!(req(&p).id(), None);
}

#[test]
fn open_with_flags_and_attrs() {
    let flags = OpenFlags::WRITE | OpenFlags::CREAT | OpenFlags::TRUNC;
    let p = Body::with_id(SSH_FXP_OPEN, 7)
        .string("/tmp/x")
        .u32(flags)
        .u32(Attrs::PERMISSIONS)
        .u32(0o644)
        .packet();
    let r = req(&p);
    assert_eq!(
        r,
        Request::Open {
            id: 7,
            path: b"/tmp/x",
            flags: OpenFlags(flags),
            attrs: Attrs {
                permissions: Some(0o644),
                ..Attrs::default()
            },
        }
    );
    assert_eq!(r.id(), Some(7));
    assert_eq!(r.kind(), SSH_FXP_OPEN);
}

#[test]
fn open_flags_render_as_words() {
    assert_eq!(OpenFlags(0).to_string(), "none");
    assert_eq!(OpenFlags(OpenFlags::READ).to_string(), "read");
    assert_eq!(
        OpenFlags(0x3f).to_string(),
        "read,write,append,create,truncate,exclusive"
    );
    assert_eq!(
        OpenFlags(OpenFlags::WRITE | 0x100).to_string(),
        "write,0x100"
    );
    assert!(OpenFlags(OpenFlags::APPEND).writes());
    assert!(!OpenFlags(OpenFlags::READ | OpenFlags::CREAT).writes());
}

#[test]
fn attrs_decode_every_field() {
    let p = full_attrs(Body::with_id(SSH_FXP_SETSTAT, 1).string("/f")).packet();
    assert_eq!(
        req(&p),
        Request::Setstat {
            id: 1,
            path: b"/f",
            attrs: FULL
        }
    );
    assert_eq!(
        FULL.to_string(),
        "size=1024 uid=1000 gid=1001 mode=0644 atime=10 mtime=20 extended=1"
    );
    assert_eq!(Attrs::default().to_string(), "");
    assert!(Attrs::default().is_empty());
}

#[test]
fn attrs_with_a_huge_extended_count_fail_without_looping_long() {
    let p = Body::with_id(SSH_FXP_SETSTAT, 1)
        .string("/f")
        .u32(Attrs::EXTENDED)
        .u32(u32::MAX)
        .string("a")
        .string("b")
        .packet();
    assert_eq!(
        Request::parse(&p),
        Err(SftpError::Truncated {
            packet: "SSH_FXP_SETSTAT"
        })
    );
}

#[test]
fn close_read_write() {
    let p = Body::with_id(SSH_FXP_CLOSE, 2)
        .string([0, 0, 0, 1])
        .packet();
    assert_eq!(
        req(&p),
        Request::Close {
            id: 2,
            handle: &[0, 0, 0, 1]
        }
    );

    let p = Body::with_id(SSH_FXP_READ, 3)
        .string("h")
        .u64(1 << 40)
        .u32(32768)
        .packet();
    assert_eq!(
        req(&p),
        Request::Read {
            id: 3,
            handle: b"h",
            offset: 1 << 40,
            len: 32768
        }
    );

    let p = Body::with_id(SSH_FXP_WRITE, 4)
        .string("h")
        .u64(5)
        .string("hello")
        .packet();
    assert_eq!(
        req(&p),
        Request::Write {
            id: 4,
            handle: b"h",
            offset: 5,
            data: b"hello"
        }
    );
}

#[test]
fn write_data_is_a_slice_of_the_packet() {
    let payload = vec![0xab; 32 * 1024];
    let p = Body::with_id(SSH_FXP_WRITE, 4)
        .string("h")
        .u64(0)
        .string(&payload)
        .packet();
    let Request::Write { data, .. } = req(&p) else {
        panic!("not a write");
    };
    assert_eq!(data.len(), payload.len());
    // No copy: the data points into the packet, right after its fixed fields.
    assert_eq!(data.as_ptr(), p[4 + 1 + 4 + 4 + 1 + 8 + 4..].as_ptr());
}

#[test]
fn path_requests() {
    let path = |kind| Body::with_id(kind, 9).string("/d").packet();
    assert_eq!(
        req(&path(SSH_FXP_REMOVE)),
        Request::Remove { id: 9, path: b"/d" }
    );
    assert_eq!(
        req(&path(SSH_FXP_RMDIR)),
        Request::Rmdir { id: 9, path: b"/d" }
    );
    assert_eq!(
        req(&path(SSH_FXP_OPENDIR)),
        Request::Opendir { id: 9, path: b"/d" }
    );

    let p = Body::with_id(SSH_FXP_MKDIR, 9)
        .string("/d")
        .u32(Attrs::PERMISSIONS)
        .u32(0o755)
        .packet();
    assert_eq!(
        req(&p),
        Request::Mkdir {
            id: 9,
            path: b"/d",
            attrs: Attrs {
                permissions: Some(0o755),
                ..Attrs::default()
            }
        }
    );

    let p = Body::with_id(SSH_FXP_RENAME, 9)
        .string("/a")
        .string("/b")
        .packet();
    assert_eq!(
        req(&p),
        Request::Rename {
            id: 9,
            from: b"/a",
            to: b"/b"
        }
    );

    let p = Body::with_id(SSH_FXP_SYMLINK, 9)
        .string("/target")
        .string("/link")
        .packet();
    assert_eq!(
        req(&p),
        Request::Symlink {
            id: 9,
            target: b"/target",
            link: b"/link"
        }
    );
}

#[test]
fn fsetstat() {
    let p = full_attrs(Body::with_id(SSH_FXP_FSETSTAT, 5).string("h")).packet();
    assert_eq!(
        req(&p),
        Request::Fsetstat {
            id: 5,
            handle: b"h",
            attrs: FULL
        }
    );
}

#[test]
fn openssh_extensions() {
    let ext = |name: &str| Body::with_id(SSH_FXP_EXTENDED, 6).string(name);
    let p = ext("posix-rename@openssh.com")
        .string("/a")
        .string("/b")
        .packet();
    assert_eq!(
        req(&p),
        Request::PosixRename {
            id: 6,
            from: b"/a",
            to: b"/b"
        }
    );
    let p = ext("hardlink@openssh.com")
        .string("/a")
        .string("/b")
        .packet();
    assert_eq!(
        req(&p),
        Request::Hardlink {
            id: 6,
            from: b"/a",
            to: b"/b"
        }
    );
    let p = full_attrs(ext("lsetstat@openssh.com").string("/l")).packet();
    assert_eq!(
        req(&p),
        Request::Lsetstat {
            id: 6,
            path: b"/l",
            attrs: FULL
        }
    );
    let p = ext("statvfs@openssh.com").string("/").packet();
    assert_eq!(
        req(&p),
        Request::Extended {
            id: 6,
            name: b"statvfs@openssh.com"
        }
    );
    assert_eq!(req(&p).kind(), SSH_FXP_EXTENDED);
}

#[test]
fn other_requests_keep_type_and_id() {
    for kind in [
        SSH_FXP_STAT,
        SSH_FXP_LSTAT,
        SSH_FXP_FSTAT,
        SSH_FXP_REALPATH,
        SSH_FXP_READDIR,
        SSH_FXP_READLINK,
        99,
    ] {
        let p = Body::with_id(kind, 11).string("x").packet();
        assert_eq!(req(&p), Request::Other { id: 11, kind });
    }
}

#[test]
fn responses() {
    let p = Body::new(SSH_FXP_VERSION)
        .u32(3)
        .string("posix-rename@openssh.com")
        .string("1")
        .packet();
    assert_eq!(resp(&p), Response::Version { version: 3 });
    assert_eq!(resp(&p).id(), None);

    let p = Body::with_id(SSH_FXP_STATUS, 1)
        .u32(2)
        .string("No such file")
        .string("en")
        .packet();
    assert_eq!(
        resp(&p),
        Response::Status {
            id: 1,
            code: StatusCode::NO_SUCH_FILE,
            message: b"No such file"
        }
    );

    let p = Body::with_id(SSH_FXP_HANDLE, 2)
        .string([0, 0, 0, 0])
        .packet();
    assert_eq!(
        resp(&p),
        Response::Handle {
            id: 2,
            handle: &[0, 0, 0, 0]
        }
    );

    let p = Body::with_id(SSH_FXP_DATA, 3).string("abc").packet();
    assert_eq!(
        resp(&p),
        Response::Data {
            id: 3,
            data: b"abc"
        }
    );
    assert_eq!(resp(&p).kind(), SSH_FXP_DATA);

    for kind in [SSH_FXP_NAME, SSH_FXP_ATTRS, SSH_FXP_EXTENDED_REPLY] {
        let p = Body::with_id(kind, 4).u32(0).packet();
        assert_eq!(resp(&p), Response::Other { id: 4, kind });
    }
}

#[test]
fn a_status_without_message_or_language_is_accepted() {
    let p = Body::with_id(SSH_FXP_STATUS, 1).u32(0).packet();
    assert_eq!(
        resp(&p),
        Response::Status {
            id: 1,
            code: StatusCode::OK,
            message: b""
        }
    );
    // A message that is there must be whole.
    let p = Body::with_id(SSH_FXP_STATUS, 1)
        .u32(4)
        .u32(10)
        .raw(b"abc")
        .packet();
    assert!(Response::parse(&p).is_err());
}

#[test]
fn trailing_bytes_are_ignored() {
    let p = Body::with_id(SSH_FXP_REMOVE, 1)
        .string("/x")
        .raw(b"junk")
        .packet();
    assert_eq!(req(&p), Request::Remove { id: 1, path: b"/x" });
}

/// Every packet cut short at every length gives an error, never a panic or a wrong value.
#[test]
fn truncated_packets_are_errors() {
    let packets = [
        Body::new(SSH_FXP_INIT).u32(3).packet(),
        full_attrs(Body::with_id(SSH_FXP_OPEN, 1).string("/p").u32(1)).packet(),
        Body::with_id(SSH_FXP_WRITE, 1)
            .string("h")
            .u64(0)
            .string("data")
            .packet(),
        Body::with_id(SSH_FXP_READ, 1)
            .string("h")
            .u64(0)
            .u32(9)
            .packet(),
        Body::with_id(SSH_FXP_RENAME, 1)
            .string("/a")
            .string("/b")
            .packet(),
        full_attrs(Body::with_id(SSH_FXP_FSETSTAT, 1).string("h")).packet(),
        Body::with_id(SSH_FXP_EXTENDED, 1)
            .string("posix-rename@openssh.com")
            .string("/a")
            .string("/b")
            .packet(),
    ];
    for p in &packets {
        assert!(Request::parse(p).is_ok());
        for cut in 5..p.len() {
            // A body cut short, with the prefix fixed to match it.
            let mut short = p[..cut].to_vec();
            short[..4].copy_from_slice(&((cut - 4) as u32).to_be_bytes());
            assert!(
                matches!(Request::parse(&short), Err(SftpError::Truncated { .. })),
                "cut at {cut} of {p:?}"
            );
        }
    }
    let responses = [
        Body::with_id(SSH_FXP_HANDLE, 1).string("hh").packet(),
        Body::with_id(SSH_FXP_DATA, 1).string("dddd").packet(),
        Body::new(SSH_FXP_VERSION).u32(3).packet(),
    ];
    for p in &responses {
        assert!(Response::parse(p).is_ok());
        for cut in 5..p.len() {
            let mut short = p[..cut].to_vec();
            short[..4].copy_from_slice(&((cut - 4) as u32).to_be_bytes());
            assert!(matches!(
                Response::parse(&short),
                Err(SftpError::Truncated { .. })
            ));
        }
    }
}

#[test]
fn the_length_prefix_must_match() {
    let mut p = Body::with_id(SSH_FXP_REMOVE, 1).string("/x").packet();
    p.push(0);
    assert_eq!(
        Request::parse(&p),
        Err(SftpError::LengthMismatch { said: 11, got: 12 })
    );
    assert_eq!(Request::parse(&[0, 0, 0, 0]), Err(SftpError::Empty));
    assert!(matches!(
        Response::parse(&[0, 0]),
        Err(SftpError::Truncated { .. })
    ));
}
