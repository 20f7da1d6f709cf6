//! A session's packets in, audit texts and outcomes out.

use super::*;
use crate::sftp::framer::Framer;
use crate::sftp::packet::*;
use crate::sftp::status::status_packet;
use crate::sftp::testing::Body;

const WRITE_CREATE_TRUNC: u32 = OpenFlags::WRITE | OpenFlags::CREAT | OpenFlags::TRUNC;

fn open(id: u32, path: &str, flags: u32) -> Vec<u8> {
    Body::with_id(SSH_FXP_OPEN, id)
        .string(path)
        .u32(flags)
        .u32(0)
        .packet()
}

fn write(id: u32, handle: &[u8], offset: u64, data: &[u8]) -> Vec<u8> {
    Body::with_id(SSH_FXP_WRITE, id)
        .string(handle)
        .u64(offset)
        .string(data)
        .packet()
}

fn read(id: u32, handle: &[u8], offset: u64) -> Vec<u8> {
    Body::with_id(SSH_FXP_READ, id)
        .string(handle)
        .u64(offset)
        .u32(32768)
        .packet()
}

fn close(id: u32, handle: &[u8]) -> Vec<u8> {
    Body::with_id(SSH_FXP_CLOSE, id).string(handle).packet()
}

fn handle(id: u32, handle: &[u8]) -> Vec<u8> {
    Body::with_id(SSH_FXP_HANDLE, id).string(handle).packet()
}

fn data(id: u32, bytes: &[u8]) -> Vec<u8> {
    Body::with_id(SSH_FXP_DATA, id).string(bytes).packet()
}

fn status(id: u32, code: StatusCode, message: &str) -> Vec<u8> {
    status_packet(id, code, message).to_vec()
}

fn ok(id: u32) -> Vec<u8> {
    status(id, StatusCode::OK, "Success")
}

/// The tracker, fed whole packets.
#[derive(Default)]
struct Session {
    tracker: Tracker,
}

impl Session {
    fn client(&mut self, packet: &[u8]) -> Option<Audited> {
        let request = Request::parse(packet).unwrap();
        self.tracker.on_request(&request).unwrap()
    }

    fn server(&mut self, packet: &[u8]) -> Option<Finished> {
        let response = Response::parse(packet).unwrap();
        self.tracker.on_response(&response).unwrap()
    }

    fn client_err(&mut self, packet: &[u8]) -> SftpError {
        let request = Request::parse(packet).unwrap();
        self.tracker.on_request(&request).unwrap_err()
    }

    fn server_err(&mut self, packet: &[u8]) -> SftpError {
        let response = Response::parse(packet).unwrap();
        self.tracker.on_response(&response).unwrap_err()
    }

    /// An audited request answered with `answer`: its text and its end.
    fn exchange(&mut self, request: &[u8], answer: &[u8]) -> (String, Finished) {
        let audited = self.client(request).expect("audited");
        let finished = self.server(answer).expect("finished");
        assert_eq!(finished.key(), audited.key());
        assert_eq!(finished.request_id(), audited.request_id());
        assert_eq!(finished.op(), audited.op());
        (audited.text().to_owned(), finished)
    }
}

#[test]
fn open_write_three_times_close_reports_the_bytes_written() {
    let mut s = Session::default();
    assert_eq!(s.client(&Body::new(SSH_FXP_INIT).u32(3).packet()), None);
    assert_eq!(s.server(&Body::new(SSH_FXP_VERSION).u32(3).packet()), None);

    let p = Body::with_id(SSH_FXP_OPEN, 1)
        .string("/tmp/x")
        .u32(WRITE_CREATE_TRUNC)
        .u32(Attrs::PERMISSIONS)
        .u32(0o100644)
        .packet();
    let audited = s.client(&p).unwrap();
    assert_eq!(
        audited.text(),
        "sftp open /tmp/x write,create,truncate mode=0644"
    );
    assert_eq!(audited.op(), Op::Open);
    assert_eq!(audited.request_id(), 1);
    assert_eq!(s.server(&handle(1, b"\0\0\0\x07")), None);
    assert_eq!(s.tracker.open_handles(), 1);

    // Pipelined, as OpenSSH sends them.
    for (i, offset, len) in [(2u32, 0u64, 32768usize), (3, 32768, 32768), (4, 65536, 100)] {
        assert_eq!(
            s.client(&write(i, b"\0\0\0\x07", offset, &vec![1; len])),
            None
        );
    }
    assert_eq!(s.tracker.in_flight(), 3);
    for i in 2..=4 {
        assert_eq!(s.server(&ok(i)), None);
    }
    assert_eq!(s.client(&close(5, b"\0\0\0\x07")), None);
    let finished = s.server(&ok(5)).unwrap();

    assert_eq!(finished.key(), audited.key());
    assert_eq!(finished.request_id(), 1);
    assert_eq!(finished.outcome(), &Outcome::Ok);
    let t = finished.transfer().unwrap();
    assert_eq!((t.read(), t.written()), (0, 65636));
    const SHA: &str = "9c7f327d75dc489382caad322bd5e11cb8950e2a5f4b19cee5afad9d98a054ed";
    assert_eq!(
        finished.summary(),
        format!("wrote 65636 bytes, sha256 {SHA}")
    );
    assert_eq!(finished.to_string(), finished.summary());
    assert_eq!(t.path(), "/tmp/x");
    assert_eq!(t.upload().and_then(|u| u.sha256.as_deref()), Some(SHA));
    assert_eq!(t.download(), None);
    assert_eq!(s.tracker.open_handles(), 0);
    assert_eq!(s.tracker.in_flight(), 0);
    assert!(s.tracker.drain().is_empty());
}

#[test]
fn a_failed_open_ends_at_once() {
    let mut s = Session::default();
    let (text, finished) = s.exchange(
        &open(1, "/root/secret", OpenFlags::READ),
        &status(1, StatusCode::PERMISSION_DENIED, "Permission denied"),
    );
    assert_eq!(text, "sftp open /root/secret read");
    assert_eq!(
        finished.outcome(),
        &Outcome::Failed {
            code: StatusCode::PERMISSION_DENIED,
            message: "Permission denied".to_owned()
        }
    );
    assert_eq!(finished.transfer(), None);
    assert_eq!(
        finished.summary(),
        "SSH_FX_PERMISSION_DENIED: Permission denied"
    );
    assert_eq!(s.tracker.open_handles(), 0);
    assert_eq!(s.tracker.in_flight(), 0);
}

#[test]
fn reads_count_the_data_the_server_returned() {
    let mut s = Session::default();
    let audited = s.client(&open(1, "/etc/hosts", OpenFlags::READ)).unwrap();
    s.server(&handle(1, b"h1"));
    s.client(&read(2, b"h1", 0));
    s.client(&read(3, b"h1", 32768));
    s.client(&read(4, b"h1", 65536));
    assert_eq!(s.server(&data(2, &[0; 100])), None);
    assert_eq!(s.server(&data(3, &[0; 1])), None);
    assert_eq!(s.server(&status(4, StatusCode::EOF, "End of file")), None);
    s.client(&close(5, b"h1"));
    let finished = s.server(&ok(5)).unwrap();
    assert_eq!(finished.key(), audited.key());
    assert_eq!(
        finished.summary(),
        "read 101 bytes, no sha256: a gap never filled"
    );
}

#[test]
fn a_read_write_handle_reports_both_and_an_empty_one_its_direction() {
    let mut s = Session::default();
    s.client(&open(1, "/f", OpenFlags::READ | OpenFlags::WRITE));
    s.server(&handle(1, b"h"));
    s.client(&write(2, b"h", 0, b"ab"));
    s.server(&ok(2));
    s.client(&read(3, b"h", 0));
    s.server(&data(3, b"a"));
    s.client(&close(4, b"h"));
    assert_eq!(
        s.server(&ok(4)).unwrap().summary(),
        "read 1 byte, sha256 ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb; \
         wrote 2 bytes, sha256 fb8e20fc2e4c3f248c60c39bd652f3c1347298bb977b8b4d5903b85055620603"
    );

    s.client(&open(5, "/g", OpenFlags::APPEND));
    s.server(&handle(5, b"g"));
    s.client(&close(6, b"g"));
    assert_eq!(
        s.server(&ok(6)).unwrap().summary(),
        "wrote 0 bytes, no sha256: appended to the file, not written from its start"
    );

    s.client(&open(7, "/r", OpenFlags::READ));
    s.server(&handle(7, b"r"));
    s.client(&close(8, b"r"));
    assert_eq!(s.server(&ok(8)).unwrap().summary(), "read 0 bytes");
}

#[test]
fn a_small_upload_is_copied_and_a_download_in_any_order_is_hashed() {
    let mut s = Session {
        tracker: Tracker::new().keep_uploads_up_to(16),
    };
    s.client(&open(1, "/tmp/AnsiballZ_command.py", WRITE_CREATE_TRUNC));
    s.server(&handle(1, b"w"));
    // Two writes in flight, answered out of order.
    s.client(&write(2, b"w", 5, b" world"));
    s.client(&write(3, b"w", 0, b"hello"));
    s.server(&ok(3));
    s.server(&ok(2));
    s.client(&close(4, b"w"));
    let finished = s.server(&ok(4)).unwrap();
    let upload = finished.transfer().unwrap().upload().unwrap();
    assert_eq!(upload.copy.as_deref(), Some(&b"hello world"[..]));
    assert_eq!(upload.bytes, 11);

    // Too big for the copy: hashed only, and why is said.
    s.client(&open(5, "/tmp/big", WRITE_CREATE_TRUNC));
    s.server(&handle(5, b"b"));
    s.client(&write(6, b"b", 0, &[7; 17]));
    s.server(&ok(6));
    s.client(&close(7, b"b"));
    let finished = s.server(&ok(7)).unwrap();
    let upload = finished.transfer().unwrap().upload().unwrap();
    assert!(upload.sha256.is_some());
    assert_eq!(upload.copy, None);
    assert!(upload
        .uncopied
        .is_some_and(|w| w.contains("upload_copy_max_bytes")));

    // A download whose short read is filled in later.
    s.client(&open(8, "/etc/hosts", OpenFlags::READ));
    s.server(&handle(8, b"r"));
    s.client(&read(9, b"r", 0));
    s.client(&read(10, b"r", 32768));
    s.server(&data(9, b"abc"));
    s.server(&data(10, b"z"));
    s.client(&read(11, b"r", 3));
    s.server(&data(11, &[b'y'; 32765]));
    s.client(&close(12, b"r"));
    let finished = s.server(&ok(12)).unwrap();
    let download = finished.transfer().unwrap().download().unwrap();
    let mut whole = b"abc".to_vec();
    whole.extend([b'y'; 32765]);
    whole.push(b'z');
    let expected = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &whole);
    assert_eq!(
        download.sha256.as_deref(),
        Some(gatehouse_core::identity::hex(expected.as_ref()).as_str())
    );
    assert_eq!(download.copy, None, "downloads are never copied");
}

#[test]
fn a_write_the_server_refused_is_not_counted() {
    let mut s = Session::default();
    s.client(&open(1, "/full", WRITE_CREATE_TRUNC));
    s.server(&handle(1, b"h"));
    s.client(&write(2, b"h", 0, &[0; 10]));
    s.client(&write(3, b"h", 10, &[0; 10]));
    s.server(&ok(2));
    s.server(&status(3, StatusCode::FAILURE, "No space left on device"));
    s.client(&close(4, b"h"));
    assert_eq!(
        s.server(&ok(4)).unwrap().summary(),
        "wrote 10 bytes, no sha256: the server refused a write"
    );
}

#[test]
fn a_failed_close_ends_the_file_with_its_bytes() {
    let mut s = Session::default();
    s.client(&open(1, "/nfs/f", WRITE_CREATE_TRUNC));
    s.server(&handle(1, b"h"));
    s.client(&write(2, b"h", 0, &[0; 5]));
    s.server(&ok(2));
    s.client(&close(3, b"h"));
    let finished = s
        .server(&status(3, StatusCode::FAILURE, "Stale file handle"))
        .unwrap();
    assert_eq!(
        finished.summary(),
        "SSH_FX_FAILURE: Stale file handle; wrote 5 bytes, \
         sha256 8855508aade16ec573d21e6a485dfd0a7624085c1a14b5ecdd6485de0c6839a4"
    );
    assert_eq!(finished.transfer().unwrap().written(), 5);
    assert_eq!(s.tracker.open_handles(), 0);
}

#[test]
fn path_requests_are_audited_and_ended_by_their_status() {
    let ext = |id, name: &str| Body::with_id(SSH_FXP_EXTENDED, id).string(name);
    let cases = [
        (
            Body::with_id(SSH_FXP_REMOVE, 1).string("/tmp/x").packet(),
            "sftp remove /tmp/x",
            Op::Remove,
        ),
        (
            Body::with_id(SSH_FXP_RENAME, 1)
                .string("/a")
                .string("/b")
                .packet(),
            "sftp rename /a /b",
            Op::Rename,
        ),
        (
            ext(1, "posix-rename@openssh.com")
                .string("/a")
                .string("/b c")
                .packet(),
            "sftp posix-rename /a \"/b c\"",
            Op::PosixRename,
        ),
        (
            ext(1, "hardlink@openssh.com")
                .string("/a")
                .string("/b")
                .packet(),
            "sftp hardlink /a /b",
            Op::Hardlink,
        ),
        (
            Body::with_id(SSH_FXP_MKDIR, 1)
                .string("/d")
                .u32(Attrs::PERMISSIONS)
                .u32(0o40755)
                .packet(),
            "sftp mkdir /d mode=0755",
            Op::Mkdir,
        ),
        (
            Body::with_id(SSH_FXP_MKDIR, 1).string("/d").u32(0).packet(),
            "sftp mkdir /d",
            Op::Mkdir,
        ),
        (
            Body::with_id(SSH_FXP_RMDIR, 1).string("/d").packet(),
            "sftp rmdir /d",
            Op::Rmdir,
        ),
        (
            Body::with_id(SSH_FXP_SETSTAT, 1)
                .string("/f")
                .u32(Attrs::PERMISSIONS)
                .u32(0o644)
                .packet(),
            "sftp setstat /f mode=0644",
            Op::Setstat,
        ),
        (
            Body::with_id(SSH_FXP_SETSTAT, 1)
                .string("/f")
                .u32(Attrs::SIZE | Attrs::UIDGID | Attrs::ACMODTIME)
                .u64(0)
                .u32(0)
                .u32(0)
                .u32(1)
                .u32(2)
                .packet(),
            "sftp setstat /f size=0 uid=0 gid=0 atime=1 mtime=2",
            Op::Setstat,
        ),
        (
            ext(1, "lsetstat@openssh.com")
                .string("/l")
                .u32(Attrs::PERMISSIONS)
                .u32(0o600)
                .packet(),
            "sftp lsetstat /l mode=0600",
            Op::Lsetstat,
        ),
        (
            Body::with_id(SSH_FXP_SYMLINK, 1)
                .string("/target")
                .string("/link")
                .packet(),
            "sftp symlink /target /link",
            Op::Symlink,
        ),
    ];
    for (request, want, op) in cases {
        let mut s = Session::default();
        let (text, finished) = s.exchange(&request, &ok(1));
        assert_eq!(text, want);
        assert_eq!(finished.op(), op);
        assert_eq!(finished.outcome(), &Outcome::Ok);
        assert_eq!(finished.summary(), "ok");

        let (_, finished) = s.exchange(
            &request,
            &status(1, StatusCode::NO_SUCH_FILE, "No such file"),
        );
        assert_eq!(finished.summary(), "SSH_FX_NO_SUCH_FILE: No such file");
        assert_eq!(s.tracker.in_flight(), 0);
    }
}

#[test]
fn a_status_without_message_reads_as_its_code() {
    let mut s = Session::default();
    let (_, finished) = s.exchange(
        &Body::with_id(SSH_FXP_REMOVE, 1).string("/x").packet(),
        &Body::with_id(SSH_FXP_STATUS, 1).u32(4).packet(),
    );
    assert_eq!(finished.summary(), "SSH_FX_FAILURE");
}

#[test]
fn fsetstat_names_the_handles_path() {
    let mut s = Session::default();
    s.client(&open(1, "/tmp/up load", WRITE_CREATE_TRUNC));
    s.server(&handle(1, b"h"));
    let p = Body::with_id(SSH_FXP_FSETSTAT, 2)
        .string("h")
        .u32(Attrs::PERMISSIONS)
        .u32(0o640)
        .packet();
    let (text, finished) = s.exchange(&p, &ok(2));
    assert_eq!(text, "sftp fsetstat \"/tmp/up load\" mode=0640");
    assert_eq!(finished.summary(), "ok");

    let p = Body::with_id(SSH_FXP_FSETSTAT, 3)
        .string([0xde, 0xad])
        .u32(0)
        .packet();
    let (text, _) = s.exchange(&p, &ok(3));
    assert_eq!(text, "sftp fsetstat handle:dead");
}

#[test]
fn a_directory_listing_ends_at_its_close_without_byte_counts() {
    let mut s = Session::default();
    let audited = s
        .client(&Body::with_id(SSH_FXP_OPENDIR, 1).string("/srv").packet())
        .unwrap();
    assert_eq!(audited.text(), "sftp opendir /srv");
    s.server(&handle(1, b"d"));
    let readdir = |id| Body::with_id(SSH_FXP_READDIR, id).string("d").packet();
    assert_eq!(s.client(&readdir(2)), None);
    assert_eq!(
        s.server(&Body::with_id(SSH_FXP_NAME, 2).u32(0).packet()),
        None
    );
    assert_eq!(s.client(&readdir(3)), None);
    assert_eq!(s.server(&status(3, StatusCode::EOF, "")), None);
    s.client(&close(4, b"d"));
    let finished = s.server(&ok(4)).unwrap();
    assert_eq!(finished.key(), audited.key());
    assert_eq!(finished.op(), Op::Opendir);
    assert_eq!(finished.transfer(), None);
    assert_eq!(finished.summary(), "ok");
}

#[test]
fn unaudited_requests_pass_but_are_followed() {
    let mut s = Session::default();
    for kind in [
        SSH_FXP_STAT,
        SSH_FXP_LSTAT,
        SSH_FXP_REALPATH,
        SSH_FXP_READLINK,
    ] {
        assert_eq!(
            s.client(&Body::with_id(kind, 1).string("/x").packet()),
            None
        );
        assert_eq!(s.tracker.in_flight(), 1);
        assert_eq!(
            s.server(&Body::with_id(SSH_FXP_ATTRS, 1).u32(0).packet()),
            None
        );
    }
    let p = Body::with_id(SSH_FXP_EXTENDED, 2)
        .string("limits@openssh.com")
        .packet();
    assert_eq!(s.client(&p), None);
    assert_eq!(
        s.server(&Body::with_id(SSH_FXP_EXTENDED_REPLY, 2).u64(0).packet()),
        None
    );
    // Reads, writes and closes of handles the tracker never saw open.
    assert_eq!(s.client(&read(3, b"?", 0)), None);
    assert_eq!(s.server(&data(3, b"x")), None);
    assert_eq!(s.client(&write(4, b"?", 0, b"x")), None);
    assert_eq!(s.server(&ok(4)), None);
    assert_eq!(s.client(&close(5, b"?")), None);
    assert_eq!(s.server(&ok(5)), None);
    assert_eq!(s.tracker.in_flight(), 0);
}

#[test]
fn a_denied_request_is_not_waited_for() {
    let mut s = Session::default();
    let audited = s
        .client(
            &Body::with_id(SSH_FXP_REMOVE, 9)
                .string("/etc/passwd")
                .packet(),
        )
        .unwrap();
    s.tracker.on_denied(&audited);
    assert_eq!(s.tracker.in_flight(), 0);
    assert!(s.tracker.drain().is_empty());
    // The id is free again.
    assert!(s
        .client(&Body::with_id(SSH_FXP_REMOVE, 9).string("/tmp/x").packet())
        .is_some());
}

#[test]
fn drain_interrupts_what_is_open_or_unanswered_in_admission_order() {
    let mut s = Session::default();
    let upload = s.client(&open(1, "/up", WRITE_CREATE_TRUNC)).unwrap();
    s.server(&handle(1, b"u"));
    s.client(&write(2, b"u", 0, &[0; 4096]));
    s.server(&ok(2));
    s.client(&write(3, b"u", 4096, &[0; 4096])); // never answered
    let download = s.client(&open(4, "/down", OpenFlags::READ)).unwrap();
    s.server(&handle(4, b"d"));
    s.client(&read(5, b"d", 0));
    s.server(&data(5, &[0; 7]));
    let remove = s
        .client(&Body::with_id(SSH_FXP_REMOVE, 6).string("/x").packet())
        .unwrap();
    let pending_open = s.client(&open(7, "/late", OpenFlags::READ)).unwrap();
    let dir = s
        .client(&Body::with_id(SSH_FXP_OPENDIR, 8).string("/").packet())
        .unwrap();
    s.server(&handle(8, b"dir"));
    s.client(&close(9, b"dir")); // close sent, never answered

    let drained = s.tracker.drain();
    let keys: Vec<_> = drained.iter().map(Finished::key).collect();
    assert_eq!(
        keys,
        [
            upload.key(),
            download.key(),
            remove.key(),
            pending_open.key(),
            dir.key()
        ]
    );
    let summaries: Vec<_> = drained.iter().map(Finished::summary).collect();
    assert_eq!(
        summaries,
        [
            "interrupted after writing 4096 bytes",
            "interrupted after reading 7 bytes",
            "interrupted",
            "interrupted",
            "interrupted",
        ]
    );
    assert!(drained.iter().all(|f| f.outcome() == &Outcome::Interrupted));
    assert_eq!(drained[0].request_id(), 1);
    assert_eq!(s.tracker.in_flight(), 0);
    assert_eq!(s.tracker.open_handles(), 0);
    assert!(s.tracker.drain().is_empty());
}

#[test]
fn keys_are_not_request_ids_and_never_repeat() {
    let mut s = Session::default();
    let a = s
        .client(&Body::with_id(SSH_FXP_REMOVE, 5).string("/a").packet())
        .unwrap();
    s.server(&ok(5));
    let b = s
        .client(&Body::with_id(SSH_FXP_REMOVE, 5).string("/b").packet())
        .unwrap();
    assert_ne!(a.key(), b.key());
    assert_eq!((a.key().get(), b.key().get()), (1, 2));
}

#[test]
fn a_reused_request_id_in_flight_is_an_error() {
    let mut s = Session::default();
    s.client(&open(1, "/x", OpenFlags::READ));
    // Whether the second would be audited or not: its answer could pass for the open's.
    let stat = Body::with_id(SSH_FXP_STAT, 1).string("/x").packet();
    assert_eq!(s.client_err(&stat), SftpError::DuplicateRequestId { id: 1 });
}

#[test]
fn answers_that_do_not_fit_are_errors() {
    let mut s = Session::default();
    assert_eq!(
        s.server_err(&ok(42)),
        SftpError::UnknownResponseId { id: 42 }
    );

    s.client(&open(1, "/x", OpenFlags::READ));
    assert_eq!(
        s.server_err(&data(1, b"x")),
        SftpError::UnexpectedResponse {
            request: "open",
            response: "SSH_FXP_DATA"
        }
    );

    s.client(&open(2, "/x", OpenFlags::READ));
    s.server(&handle(2, b"h"));
    s.client(&write(3, b"h", 0, b"x"));
    assert_eq!(
        s.server_err(&data(3, b"x")),
        SftpError::UnexpectedResponse {
            request: "write",
            response: "SSH_FXP_DATA"
        }
    );

    s.client(&open(4, "/y", OpenFlags::READ));
    assert_eq!(s.server_err(&handle(4, b"h")), SftpError::HandleReused);
}

#[test]
fn the_number_in_flight_is_bounded() {
    let mut s = Session {
        tracker: Tracker::with_max_pending(2),
    };
    s.client(&read(1, b"h", 0));
    s.client(&read(2, b"h", 0));
    assert_eq!(
        s.client_err(&read(3, b"h", 0)),
        SftpError::TooManyPending { max: 2 }
    );
}

/// A whole session as two byte streams in rounds (the client's requests, then the server's
/// answers, as causality orders them), each split by its framer fed in chunks of
/// `chunk(offset)` bytes. Returns the audit texts, the summaries and the packets forwarded.
fn run_session(chunk: impl Fn(usize) -> usize) -> (Vec<String>, Vec<String>, Vec<Vec<u8>>) {
    let h = b"\0\0\0\0";
    let mut writes = Vec::new();
    let mut oks = Vec::new();
    for i in 0..3u32 {
        writes.extend(write(2 + i, h, u64::from(i) * 32768, &vec![i as u8; 32768]));
        oks.extend(ok(2 + i));
    }
    let rounds: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (
            Body::new(SSH_FXP_INIT).u32(3).packet(),
            Body::new(SSH_FXP_VERSION)
                .u32(3)
                .string("posix-rename@openssh.com")
                .string("1")
                .packet(),
        ),
        (open(1, "/tmp/upload", WRITE_CREATE_TRUNC), handle(1, h)),
        (writes, oks),
        (
            [
                close(5, h),
                Body::with_id(SSH_FXP_RENAME, 6)
                    .string("/tmp/upload")
                    .string("/tmp/done")
                    .packet(),
                open(7, "/nope", OpenFlags::READ),
            ]
            .concat(),
            [
                ok(5),
                ok(6),
                status(7, StatusCode::NO_SUCH_FILE, "No such file"),
            ]
            .concat(),
        ),
    ];

    let mut tracker = Tracker::new();
    let mut audited = Vec::new();
    let mut finished = Vec::new();
    let mut forwarded = Vec::new();
    let mut upstream = Framer::new();
    let mut downstream = Framer::new();
    for (requests, answers) in &rounds {
        let mut at = 0;
        while at < requests.len() {
            let end = at.saturating_add(chunk(at)).min(requests.len());
            upstream.push(&requests[at..end]);
            at = end;
            while let Some(p) = upstream.next_packet().unwrap() {
                let request = Request::parse(&p).unwrap();
                if let Some(a) = tracker.on_request(&request).unwrap() {
                    audited.push(a.text().to_owned());
                }
                forwarded.push(p.to_vec());
            }
        }
        assert_eq!(upstream.buffered(), 0);
        let mut at = 0;
        while at < answers.len() {
            let end = at.saturating_add(chunk(at)).min(answers.len());
            downstream.push(&answers[at..end]);
            at = end;
            while let Some(p) = downstream.next_packet().unwrap() {
                let response = Response::parse(&p).unwrap();
                if let Some(f) = tracker.on_response(&response).unwrap() {
                    finished.push(f.summary());
                }
            }
        }
        assert_eq!(downstream.buffered(), 0);
    }
    let sent: Vec<u8> = rounds.iter().flat_map(|(r, _)| r.clone()).collect();
    assert_eq!(forwarded.concat(), sent, "forwarded untouched");
    (audited, finished, forwarded)
}

#[test]
fn a_session_split_at_any_boundary_gives_the_same_trail() {
    let whole = run_session(|_| usize::MAX);
    assert_eq!(
        whole.0,
        [
            "sftp open /tmp/upload write,create,truncate",
            "sftp rename /tmp/upload /tmp/done",
            "sftp open /nope read",
        ]
    );
    assert_eq!(
        whole.1,
        [
            "wrote 98304 bytes, sha256 117dad8e79aeaee19eaa34a0d81557ac57e806dcc26a426f73408505304d16f8",
            "ok",
            "SSH_FX_NO_SUCH_FILE: No such file"
        ]
    );
    assert_eq!(whole.2.len(), 8);

    assert_eq!(run_session(|_| 1), whole);
    assert_eq!(run_session(|_| 3), whole);
    assert_eq!(run_session(|_| 4096), whole);
    // Uneven chunk sizes from a fixed pseudo-random sequence.
    assert_eq!(run_session(|at| (at * 7919 + 13) % 1500 + 1), whole);
}
