//! Files that cross a session (SFTP and scp transfers), as a wire reports them to the session
//! for its recording.

/// Which way a file went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileDirection {
    /// From the client to the server.
    Upload,
    /// From the server to the client.
    Download,
}

impl FileDirection {
    /// `upload` or `download`, as the recording says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upload => "upload",
            Self::Download => "download",
        }
    }
}

/// A file that crossed a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCrossed {
    /// Which way.
    pub direction: FileDirection,
    /// The path, as the audit entry shows it.
    pub path: String,
    /// Bytes moved.
    pub bytes: u64,
    /// SHA-256 (hex) of the bytes moved, in file order, if they could be hashed.
    pub sha256: Option<String>,
    /// The bytes of a small upload, for the recording: kept there only as text, masked by the
    /// session (a binary file could not be masked, so it is named by its hash alone).
    pub copy: Option<Vec<u8>>,
    /// Why there is no hash or no copy, if that is the case.
    pub note: Option<String>,
}
