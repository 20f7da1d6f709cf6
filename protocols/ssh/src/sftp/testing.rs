//! Packets built by hand for the tests, field by field as the draft lays them out.

/// A packet body under construction; [`Body::packet`] prefixes its length.
#[derive(Default)]
pub(crate) struct Body(Vec<u8>);

impl Body {
    /// A body that starts with a type byte.
    pub(crate) fn new(kind: u8) -> Self {
        Self(vec![kind])
    }

    /// A body of a packet with a request id.
    pub(crate) fn with_id(kind: u8, id: u32) -> Self {
        Self::new(kind).u32(id)
    }

    pub(crate) fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(crate) fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(crate) fn string(self, s: impl AsRef<[u8]>) -> Self {
        let s = s.as_ref();
        let mut b = self.u32(s.len() as u32);
        b.0.extend_from_slice(s);
        b
    }

    pub(crate) fn raw(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }

    /// The whole packet: length prefix and body.
    pub(crate) fn packet(self) -> Vec<u8> {
        let mut p = (self.0.len() as u32).to_be_bytes().to_vec();
        p.extend(self.0);
        p
    }
}
