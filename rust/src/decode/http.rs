//! HTTP/1.1 response framing for a watch read straight off the socket: the status line and
//! headers, then a body delimited by `Transfer-Encoding: chunked`, `Content-Length`, or the
//! end of the connection (RFC 9112 section 6.3). Yields body bytes as borrowed slices of the
//! input, so the common case (a chunk wholly inside one read) copies nothing.

use crate::error::{Error, Result};

/// A head line (status line, header, chunk-size line, trailer) longer than this is
/// garbage, not HTTP.
const MAX_HEAD_LINE: usize = 64 * 1024;
/// The whole head.
const MAX_HEAD: usize = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    ChunkSize,
    ChunkData(u64),
    /// The CRLF after a chunk's data.
    ChunkEnd,
    Trailers,
    Length(u64),
    UntilClose,
    Done,
}

pub enum Step<'a> {
    /// Some bytes of framing were consumed; nothing to report.
    Framing,
    /// The response head is complete (status and headers are available).
    Head,
    /// Body bytes.
    Body(&'a [u8]),
    /// The body ended (last chunk and trailers, or Content-Length reached).
    Done,
}

pub struct Framing {
    state: State,
    /// A head/chunk-size/trailer line being assembled across reads.
    line: Vec<u8>,
    /// Raw stream offset of the start of `line` (for error offsets).
    line_start: u64,
    /// Raw bytes consumed so far.
    raw_offset: u64,
    head_bytes: usize,
    status_line_seen: bool,
    pub status: Option<u16>,
    pub reason: String,
    pub headers: Option<Vec<(String, String)>>,
    pending_headers: Vec<(String, String)>,
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b.iter().position(|c| !matches!(c, b' ' | b'\t')).unwrap_or(b.len());
    let e = b.iter().rposition(|c| !matches!(c, b' ' | b'\t')).map_or(s, |i| i + 1);
    &b[s..e.max(s)]
}

impl Framing {
    pub fn new() -> Self {
        Framing {
            state: State::Head,
            line: Vec::new(),
            line_start: 0,
            raw_offset: 0,
            head_bytes: 0,
            status_line_seen: false,
            status: None,
            reason: String::new(),
            headers: None,
            pending_headers: Vec::new(),
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Why stopping here would truncate the response, if it would.
    pub fn truncation(&self) -> Option<&'static str> {
        match self.state {
            State::Head => Some("the stream ended inside the response head"),
            State::ChunkSize | State::ChunkEnd | State::Trailers if !self.line.is_empty() => {
                Some("the stream ended inside chunk framing")
            }
            State::ChunkSize => Some("the stream ended before the last chunk"),
            State::ChunkEnd | State::ChunkData(_) => Some("the stream ended inside a chunk"),
            State::Trailers => Some("the stream ended inside the trailers"),
            State::Length(_) => Some("the stream ended before Content-Length bytes"),
            State::UntilClose | State::Done => None,
        }
    }

    fn err(&self, message: String) -> Error {
        Error::Decode { offset: self.line_start, message }
    }

    /// Collect one CRLF- (or LF-) terminated line. Returns bytes consumed and the line
    /// (without its terminator) once complete.
    fn take_line(&mut self, data: &[u8], line_out: &mut Vec<u8>) -> Result<(usize, bool)> {
        if self.line.is_empty() {
            self.line_start = self.raw_offset;
        }
        match memchr::memchr(b'\n', data) {
            Some(i) => {
                if self.line.len() + i > MAX_HEAD_LINE {
                    return Err(self.err("HTTP head or chunk line too long".into()));
                }
                self.line.extend_from_slice(&data[..i]);
                if self.line.last() == Some(&b'\r') {
                    self.line.pop();
                }
                std::mem::swap(line_out, &mut self.line);
                self.line.clear();
                Ok((i + 1, true))
            }
            None => {
                if self.line.len() + data.len() > MAX_HEAD_LINE {
                    return Err(self.err("HTTP head or chunk line too long".into()));
                }
                self.line.extend_from_slice(data);
                Ok((data.len(), false))
            }
        }
    }

    /// Consume a prefix of `data` (at least one byte unless `data` is empty or the body is
    /// done) and say what it was.
    pub fn step<'a>(&mut self, data: &'a [u8]) -> Result<(usize, Step<'a>)> {
        let (n, step) = self.step_inner(data)?;
        self.raw_offset += n as u64;
        Ok((n, step))
    }

    fn step_inner<'a>(&mut self, data: &'a [u8]) -> Result<(usize, Step<'a>)> {
        match self.state {
            State::Done => Ok((0, Step::Done)),
            State::ChunkData(rem) => {
                let n = (rem.min(data.len() as u64)) as usize;
                let rem = rem - n as u64;
                self.state = if rem == 0 { State::ChunkEnd } else { State::ChunkData(rem) };
                Ok((n, Step::Body(&data[..n])))
            }
            State::Length(rem) => {
                let n = (rem.min(data.len() as u64)) as usize;
                let rem = rem - n as u64;
                if rem == 0 {
                    self.state = State::Done;
                    // Report the body bytes now; the caller sees Done on its next step.
                } else {
                    self.state = State::Length(rem);
                }
                Ok((n, Step::Body(&data[..n])))
            }
            State::UntilClose => Ok((data.len(), Step::Body(data))),
            State::Head | State::ChunkSize | State::ChunkEnd | State::Trailers => {
                let mut line = Vec::new();
                let (n, complete) = self.take_line(data, &mut line)?;
                if !complete {
                    return Ok((n, Step::Framing));
                }
                let step = self.on_line(&line, n)?;
                Ok((n, step))
            }
        }
    }

    fn on_line(&mut self, line: &[u8], n: usize) -> Result<Step<'static>> {
        match self.state {
            State::Head => self.head_line(line, n),
            State::ChunkSize => {
                let size_part = match memchr::memchr(b';', line) {
                    Some(i) => &line[..i], // chunk extensions carry nothing we use
                    None => line,
                };
                let hex = trim(size_part);
                if hex.is_empty() || hex.len() > 15 || !hex.iter().all(u8::is_ascii_hexdigit) {
                    return Err(self.err(format!("invalid chunk size line {:?}", String::from_utf8_lossy(line))));
                }
                let size = u64::from_str_radix(std::str::from_utf8(hex).unwrap_or("0"), 16).unwrap_or(0);
                self.state = if size == 0 { State::Trailers } else { State::ChunkData(size) };
                Ok(Step::Framing)
            }
            State::ChunkEnd => {
                if !line.is_empty() {
                    return Err(self.err("chunk data not followed by CRLF".into()));
                }
                self.state = State::ChunkSize;
                Ok(Step::Framing)
            }
            State::Trailers => {
                if line.is_empty() {
                    self.state = State::Done;
                    return Ok(Step::Done);
                }
                Ok(Step::Framing)
            }
            _ => unreachable!("on_line only in line states"),
        }
    }

    fn head_line(&mut self, line: &[u8], n: usize) -> Result<Step<'static>> {
        self.head_bytes += n;
        if self.head_bytes > MAX_HEAD {
            return Err(self.err("HTTP response head too large".into()));
        }
        if !self.status_line_seen {
            // "HTTP/1.1 200 OK" (the reason phrase may be empty or absent).
            let text = std::str::from_utf8(line).map_err(|_| self.err("status line is not UTF-8".into()))?;
            let mut parts = text.splitn(3, ' ');
            let version = parts.next().unwrap_or("");
            let code = parts.next().unwrap_or("");
            if !version.starts_with("HTTP/1.") || code.len() != 3 || !code.bytes().all(|c| c.is_ascii_digit()) {
                return Err(self.err(format!("invalid HTTP status line {text:?}")));
            }
            self.status = code.parse().ok();
            self.reason = parts.next().unwrap_or("").trim().to_string();
            self.status_line_seen = true;
            return Ok(Step::Framing);
        }
        if !line.is_empty() {
            let Some(colon) = memchr::memchr(b':', line) else {
                return Err(self.err("header line without ':'".into()));
            };
            let name = trim(&line[..colon]);
            if name.is_empty() || name.len() != colon {
                return Err(self.err("invalid header name".into()));
            }
            let value = trim(&line[colon + 1..]);
            self.pending_headers
                .push((String::from_utf8_lossy(name).into_owned(), String::from_utf8_lossy(value).into_owned()));
            return Ok(Step::Framing);
        }
        // Blank line: end of head.
        let code = self.status.unwrap_or(0);
        let headers = std::mem::take(&mut self.pending_headers);
        self.status_line_seen = false;
        if (100..200).contains(&code) && code != 101 {
            // An interim response (100 Continue, 103 Early Hints): the real one follows.
            self.status = None;
            self.head_bytes = 0;
            return Ok(Step::Framing);
        }
        self.state = body_framing(code, &headers).map_err(|m| self.err(m))?;
        self.headers = Some(headers);
        Ok(Step::Head)
    }
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> impl Iterator<Item = &'h str> + 'h {
    let name = name.to_string();
    headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(&name)).map(|(_, v)| v.as_str())
}

/// RFC 9112 6.3: Transfer-Encoding wins over Content-Length; chunked must be the final
/// coding, otherwise the body runs to the close; no framing header means until close.
fn body_framing(code: u16, headers: &[(String, String)]) -> std::result::Result<State, String> {
    if code == 204 || code == 304 {
        return Ok(State::Done);
    }
    let codings: Vec<String> = header(headers, "transfer-encoding")
        .flat_map(|v| v.split(','))
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty())
        .collect();
    if let Some(last) = codings.last() {
        return Ok(if last == "chunked" { State::ChunkSize } else { State::UntilClose });
    }
    let mut length: Option<u64> = None;
    for v in header(headers, "content-length") {
        for part in v.split(',') {
            let n: u64 = part.trim().parse().map_err(|_| format!("invalid Content-Length {v:?}"))?;
            if length.is_some_and(|l| l != n) {
                return Err("conflicting Content-Length headers".into());
            }
            length = Some(n);
        }
    }
    Ok(match length {
        Some(0) => State::Done,
        Some(n) => State::Length(n),
        None => State::UntilClose,
    })
}
