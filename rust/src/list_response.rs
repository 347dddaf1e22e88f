//! One LIST response read off a keep-alive connection: the HTTP/1.1 framing of the watch
//! decoder (`decode::Framing`), the body collected whole for `decode::decode_list`. It stops
//! at the end of its response, so bytes after it (the answer to a pipelined request) are
//! left to the next `ListResponse` on the same connection.

use crate::decode::{Framing, Step};
use crate::error::{Error, Result};

#[derive(Default)]
pub struct ListResponse {
    framing: Framing,
    body: Vec<u8>,
    /// Raw bytes consumed (head, framing, body).
    consumed: u64,
}

impl Default for Framing {
    fn default() -> Self {
        Framing::new()
    }
}

impl ListResponse {
    pub fn new() -> Self {
        ListResponse::default()
    }

    /// Consume a prefix of `data`; returns how many bytes belong to this response (all of
    /// `data` until its end is reached).
    pub fn feed(&mut self, data: &[u8]) -> Result<usize> {
        let mut at = 0;
        while at < data.len() && !self.framing.is_done() {
            let (n, step) = self.framing.step(&data[at..])?;
            match step {
                Step::Body(b) => self.body.extend_from_slice(b),
                Step::Head => {
                    if let Some(n) = self.content_length() {
                        // One allocation for the page, not a doubling series (2.5 MB pages).
                        self.body.reserve_exact(n.min(1 << 30));
                    }
                }
                Step::Framing | Step::Done => {}
            }
            at += n;
            if n == 0 {
                break;
            }
        }
        self.consumed += at as u64;
        Ok(at)
    }

    fn content_length(&self) -> Option<usize> {
        self.header("content-length").and_then(|v| v.trim().parse().ok())
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.framing.headers.as_ref()?.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn status(&self) -> Option<u16> {
        self.framing.headers.as_ref().and(self.framing.status)
    }

    pub fn headers(&self) -> Option<&[(String, String)]> {
        self.framing.headers.as_deref()
    }

    pub fn is_done(&self) -> bool {
        self.framing.is_done()
    }

    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }

    pub fn take_body(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.body)
    }

    /// The connection closed: Ok when that ends the response (a body that runs to the
    /// close), else the typed truncation.
    pub fn finish(&mut self) -> Result<()> {
        if self.framing.is_done() {
            return Ok(());
        }
        match self.framing.truncation() {
            Some(m) => Err(Error::Truncated { message: format!("LIST response: {m}") }),
            None => Ok(()),
        }
    }

    /// Whether the connection may carry another request once this response is read: the
    /// head is in, the body is delimited (not "until close"), and nobody said close.
    pub fn reusable(&self) -> bool {
        if self.headers().is_none() {
            return false;
        }
        let delimited = self.framing.is_done() || self.framing.truncation().is_some();
        let close = self.header("connection").is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")));
        delimited && !close
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_then_pipelined_bytes() {
        let mut r = ListResponse::new();
        let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 410 Gone\r\n";
        // Byte by byte, as the worst split of reads.
        let mut used = 0;
        for i in 0..wire.len() {
            used += r.feed(&wire[i..i + 1]).unwrap();
            if r.is_done() {
                break;
            }
        }
        assert_eq!(used, 43);
        assert!(r.is_done() && r.reusable());
        assert_eq!((r.status(), r.body()), (Some(200), &b"hello"[..]));
        assert_eq!(r.feed(b"more").unwrap(), 0);
        r.finish().unwrap();
    }

    #[test]
    fn chunked_and_close() {
        let mut r = ListResponse::new();
        let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\n{\"a\r\n2\r\n\":\r\n0\r\n\r\nX";
        assert_eq!(r.feed(wire).unwrap(), wire.len() - 1);
        assert!(r.is_done() && !r.reusable());
        assert_eq!(r.body(), b"{\"a\":");
    }

    #[test]
    fn truncated_and_until_close() {
        let mut r = ListResponse::new();
        r.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc").unwrap();
        assert!(r.reusable() && !r.is_done());
        assert!(matches!(r.finish(), Err(Error::Truncated { .. })));
        let mut r = ListResponse::new();
        r.feed(b"HTTP/1.1 200 OK\r\n\r\nabc").unwrap();
        assert!(!r.reusable());
        r.finish().unwrap();
        assert_eq!(r.take_body(), b"abc");
        let mut r = ListResponse::new();
        r.feed(b"HTTP/1.1 200 O").unwrap();
        assert_eq!(r.status(), None);
        assert!(matches!(r.finish(), Err(Error::Truncated { .. })));
        assert!(matches!(ListResponse::new().feed(b"garbage\r\n"), Err(Error::Decode { .. })));
    }
}
