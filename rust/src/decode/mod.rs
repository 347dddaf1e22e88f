//! The watch decoder: raw socket bytes (or de-chunked body bytes) in, `WatchEvent`s out.
//! Knows nothing of Python; `py/decode.rs` adapts it.
//!
//! Layers, each incremental so that any split of the input gives the same events:
//! `http` (head + chunk/length/close framing) -> lines, here: a line that ends inside the
//! current read is decoded in place, the scanner finding its end as it parses; a line that
//! continues is carried in `line`, and only new bytes are searched for its '\n', so a
//! many-MiB line fed in small pieces costs linear time -> `event` (one line -> one event)
//! built on `scan`/`lex` (validating JSON scanner) and `meta` (metadata extraction).
//! `field` reuses the scanner for `Object::field_values`.

mod capture;
mod event;
mod field;
mod http;
mod lex;
mod list;
mod meta;
pub mod scan;
mod trusted;

pub use capture::{Captured, FieldPaths, ABSENT, UNKNOWN};
pub use event::{EventKind, WatchEvent};
pub use field::field_values;
pub use http::{Framing, Step};
pub use list::{decode_list, list_meta_prefix, ListPage};

/// The values of a captured span (`Captured::get`) of `json`.
pub fn values_at_span(json: &[u8], span: [u32; 2]) -> Vec<String> {
    match json.get(span[0] as usize..span[1] as usize) {
        Some(v) if !v.is_empty() => field::values_at(v),
        _ => Vec::new(),
    }
}
pub use meta::{label_at, labels_at, owner_refs_at};
pub use trusted::annotation_trusted;

use crate::error::{Error, Result, Status};
use crate::transform::Transform;
use std::sync::Arc;
use event::Line;

/// Default `max_line_bytes`: large enough for any object etcd accepts (1.5 MiB by
/// default, a few times that when configured) with room to spare.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024 * 1024;
/// A non-2xx body is kept up to this size (a Status is small; the rest is dropped).
const MAX_ERROR_BODY: usize = 1024 * 1024;
/// The message of a Status synthesised from a non-JSON error body is cut to this size.
const MAX_ERROR_TEXT: usize = 1024;
/// A line buffer that grew past this is released after use instead of kept.
const KEEP_LINE_CAPACITY: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct DecoderOptions {
    /// Input is a raw HTTP/1.1 response (true) or already de-chunked body bytes (false).
    pub http: bool,
    pub max_line_bytes: usize,
}

impl Default for DecoderOptions {
    fn default() -> Self {
        DecoderOptions { http: true, max_line_bytes: DEFAULT_MAX_LINE_BYTES }
    }
}

pub struct Decoder {
    opts: DecoderOptions,
    /// None when `opts.http` is false.
    framing: Option<http::Framing>,
    /// The partial line carried over from earlier input (never contains '\n').
    line: Vec<u8>,
    /// Body offset where `line` starts (meaningful while `line` is non-empty).
    line_start: u64,
    /// De-chunked body bytes consumed so far.
    body_offset: u64,
    /// Some while collecting the body of a non-2xx response.
    error_body: Option<Vec<u8>>,
    /// Set once the body's end was seen and handled.
    complete: bool,
    /// After an error every call returns it again.
    poison: Option<Error>,
    /// Set by `finish`: the input has ended, and any later `feed` is a caller bug.
    finished: bool,
    /// Field paths captured while decoding (the field indexes of the FIFO's store).
    field_paths: FieldPaths,
    /// Fields cut from every object decoded (see `transform`); None: objects as sent.
    transform: Option<Arc<Transform>>,
}

impl Decoder {
    pub fn new(mut opts: DecoderOptions) -> Decoder {
        // Objects are addressed with 32-bit positions (see object::MAX_OBJECT_BYTES).
        opts.max_line_bytes = opts.max_line_bytes.min(crate::object::MAX_OBJECT_BYTES);
        Decoder {
            framing: if opts.http { Some(http::Framing::new()) } else { None },
            opts,
            line: Vec::new(),
            line_start: 0,
            body_offset: 0,
            error_body: None,
            complete: false,
            poison: None,
            finished: false,
            field_paths: FieldPaths::default(),
            transform: None,
        }
    }

    /// Capture these field paths' values in every object decoded from now on, so that a
    /// field index need not walk the JSON again (`Object::field_values` uses them).
    pub fn set_field_paths(&mut self, paths: Vec<Box<str>>) {
        if *self.field_paths.paths != *paths {
            self.field_paths = FieldPaths::new(paths);
        }
    }

    /// Drop `transform`'s fields from every object decoded from now on (bookmarks and
    /// ERROR Statuses are left alone).
    pub fn set_transform(&mut self, transform: Option<Arc<Transform>>) {
        self.transform = transform;
    }

    /// HTTP status once the head was parsed; 200 for a body-only decoder.
    pub fn status_code(&self) -> Option<u16> {
        match &self.framing {
            Some(f) => f.headers.as_ref().and(f.status),
            None => Some(200),
        }
    }

    pub fn headers(&self) -> Option<&[(String, String)]> {
        self.framing.as_ref().and_then(|f| f.headers.as_deref())
    }

    pub fn body_offset(&self) -> u64 {
        self.body_offset
    }

    pub fn complete(&self) -> bool {
        self.complete
    }

    /// Decode `data`, pushing each complete event to `out`. ERROR events and non-2xx
    /// responses become `Error::Api`; after any error the decoder is poisoned. Feeding a
    /// decoder after `finish` is `Error::FeedAfterFinish` (even an empty feed): bytes after
    /// the end cannot be part of this response, and accepting them would hide the bug.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<WatchEvent>) -> Result<()> {
        if self.finished {
            return Err(Error::FeedAfterFinish);
        }
        if let Some(e) = &self.poison {
            return Err(e.clone());
        }
        let r = self.feed_inner(data, out);
        if let Err(e) = &r {
            self.poison = Some(e.clone());
        }
        r
    }

    fn feed_inner(&mut self, data: &[u8], out: &mut Vec<WatchEvent>) -> Result<()> {
        if self.framing.is_none() {
            return self.on_body(data, out);
        }
        let mut pos = 0;
        while pos < data.len() && !self.complete {
            let framing = self.framing.as_mut().expect("http decoder has framing");
            let (n, step) = framing.step(&data[pos..])?;
            pos += n;
            match step {
                http::Step::Body(b) => self.on_body(b, out)?,
                http::Step::Head => self.on_head(),
                http::Step::Framing | http::Step::Done => {}
            }
            if self.framing.as_ref().is_some_and(|f| f.is_done()) {
                self.on_body_end(out)?;
            }
        }
        // Bytes after the end of the body are not ours (nothing follows a watch response).
        Ok(())
    }

    /// The HTTP half of `feed`, for a decoder split across two threads (`crate::pump`):
    /// the head, chunk framing and a non-2xx body are handled here as `feed` would, but the
    /// bytes of a 2xx body are not decoded: their positions in `data` are appended to
    /// `bodies` (adjacent pieces merged), for a body-only decoder (`http: false`) elsewhere
    /// to decode in order, and `body_end` there once `complete` turns true. Errors and
    /// poisoning are those of `feed`; ranges found before an error are still appended.
    pub fn frame(&mut self, data: &[u8], bodies: &mut Vec<std::ops::Range<usize>>) -> Result<()> {
        if let Some(e) = &self.poison {
            return Err(e.clone());
        }
        let r = self.frame_inner(data, bodies);
        if let Err(e) = &r {
            self.poison = Some(e.clone());
        }
        r
    }

    fn frame_inner(&mut self, data: &[u8], bodies: &mut Vec<std::ops::Range<usize>>) -> Result<()> {
        let base = data.as_ptr() as usize;
        let mut push = |b: &[u8]| {
            let start = b.as_ptr() as usize - base;
            match bodies.last_mut() {
                Some(last) if last.end == start => last.end += b.len(),
                _ if b.is_empty() => {}
                _ => bodies.push(start..start + b.len()),
            }
        };
        if self.framing.is_none() {
            push(data);
            return Ok(());
        }
        let mut pos = 0;
        while pos < data.len() && !self.complete {
            let framing = self.framing.as_mut().expect("http decoder has framing");
            let (n, step) = framing.step(&data[pos..])?;
            pos += n;
            match step {
                http::Step::Body(b) if self.error_body.is_some() => {
                    self.on_body(b, &mut Vec::new())?;
                }
                http::Step::Body(b) => push(b),
                http::Step::Head => {
                    self.on_head();
                }
                http::Step::Framing | http::Step::Done => {}
            }
            if self.framing.as_ref().is_some_and(|f| f.is_done()) {
                self.complete = true;
                if self.error_body.is_some() {
                    return Err(Error::Api(self.error_status()));
                }
            }
        }
        Ok(())
    }

    /// The end of a body fed to a body-only decoder whose HTTP half (`frame`) saw the
    /// body complete: a final line without '\n' is still a line, as in `feed`.
    pub fn body_end(&mut self, out: &mut Vec<WatchEvent>) -> Result<()> {
        if let Some(e) = &self.poison {
            return Err(e.clone());
        }
        let r = self.on_body_end(out);
        if let Err(e) = &r {
            self.poison = Some(e.clone());
        }
        r
    }

    fn on_head(&mut self) {
        let code = self.status_code().unwrap_or(0);
        if !(200..300).contains(&code) {
            self.error_body = Some(Vec::new());
        }
    }

    fn on_body(&mut self, mut rest: &[u8], out: &mut Vec<WatchEvent>) -> Result<()> {
        if let Some(body) = &mut self.error_body {
            let room = MAX_ERROR_BODY.saturating_sub(body.len());
            body.extend_from_slice(&rest[..rest.len().min(room)]);
            self.body_offset += rest.len() as u64;
            return Ok(());
        }
        let max = self.opts.max_line_bytes;
        // Finish a line carried over from earlier input.
        if !self.line.is_empty() {
            let Some(i) = memchr::memchr(b'\n', rest) else {
                return self.carry(rest);
            };
            if self.line.len() + i > max {
                return Err(Error::LineTooLong { offset: self.line_start, limit: max });
            }
            self.line.extend_from_slice(&rest[..i]);
            let r = process_line(&self.line, self.line_start, &self.field_paths, self.transform.as_deref(), out);
            self.line.clear();
            if self.line.capacity() > KEEP_LINE_CAPACITY {
                self.line = Vec::new();
            }
            self.body_offset += i as u64 + 1;
            r?;
            rest = &rest[i + 1..];
        }
        // Decode lines in place: the scanner finds the end of each event while parsing it
        // (see `event::decode_prefix`), so the bytes are not searched for '\n' first. One
        // reverse search bounds that to the lines that end in `rest`, so a line continuing
        // into the next read is never parsed twice. A line that does not parse cleanly up
        // to its '\n' (blank, malformed) takes the split-then-decode path for its error.
        let Some(last_nl) = memchr::memrchr(b'\n', rest) else {
            return self.carry(rest);
        };
        let (mut lines, tail) = rest.split_at(last_nl + 1);
        while !lines.is_empty() {
            let offset = self.body_offset;
            if lines[0] == b'{' {
                if let Some((nl, line)) = event::decode_prefix(lines, &self.field_paths, self.transform.as_deref()) {
                    if nl > max {
                        return Err(Error::LineTooLong { offset, limit: max });
                    }
                    self.body_offset += nl as u64 + 1;
                    lines = &lines[nl + 1..];
                    match line {
                        Line::Event(ev) => out.push(ev),
                        Line::Error(status) => return Err(Error::Api(status)),
                    }
                    continue;
                }
            }
            let nl = memchr::memchr(b'\n', lines).expect("`lines` ends with a newline");
            if nl > max {
                return Err(Error::LineTooLong { offset, limit: max });
            }
            self.body_offset += nl as u64 + 1;
            let line = &lines[..nl];
            lines = &lines[nl + 1..];
            process_line(line, offset, &self.field_paths, self.transform.as_deref(), out)?;
        }
        self.carry(tail)
    }

    /// Keep the start of a line that continues in later input.
    fn carry(&mut self, rest: &[u8]) -> Result<()> {
        if rest.is_empty() {
            return Ok(());
        }
        if self.line.is_empty() {
            self.line_start = self.body_offset;
        }
        let max = self.opts.max_line_bytes;
        if self.line.len() + rest.len() > max {
            return Err(Error::LineTooLong { offset: self.line_start, limit: max });
        }
        self.line.extend_from_slice(rest);
        self.body_offset += rest.len() as u64;
        Ok(())
    }

    /// The body is complete: a final line without '\n' is still a line; a failure
    /// response becomes its Status.
    fn on_body_end(&mut self, out: &mut Vec<WatchEvent>) -> Result<()> {
        self.complete = true;
        if self.error_body.is_some() {
            return Err(Error::Api(self.error_status()));
        }
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            process_line(&line, self.line_start, &self.field_paths, self.transform.as_deref(), out)?;
        }
        Ok(())
    }

    /// End of input. Ok if the body is complete, or if an until-close body (or a
    /// body-only decoder) stopped at a line boundary; otherwise Truncated.
    /// Calling it again returns the same outcome.
    pub fn finish(&mut self) -> Result<()> {
        self.finished = true;
        if let Some(e) = &self.poison {
            return Err(e.clone());
        }
        let r = self.finish_inner();
        if let Err(e) = &r {
            self.poison = Some(e.clone());
        }
        r
    }

    fn finish_inner(&mut self) -> Result<()> {
        if self.complete {
            return Ok(());
        }
        if let Some(f) = &self.framing {
            if f.headers.is_none() {
                return Err(Error::Truncated { message: "the stream ended inside the response head".into() });
            }
            if self.error_body.is_some() {
                // A failure is more useful to the caller than "truncated".
                return Err(Error::Api(self.error_status()));
            }
            if let Some(why) = f.truncation() {
                return Err(Error::Truncated { message: why.into() });
            }
        }
        if !trim_ws(&self.line).is_empty() {
            return Err(Error::Truncated {
                message: format!("the stream ended inside a line starting at body offset {}", self.line_start),
            });
        }
        Ok(())
    }

    fn error_status(&self) -> Status {
        let f = self.framing.as_ref();
        let code = f.and_then(|f| f.status).unwrap_or(0);
        let body = self.error_body.as_deref().unwrap_or(&[]);
        if let Some(st) = meta::parse_status(body, code) {
            return st;
        }
        let text = String::from_utf8_lossy(trim_ws(body));
        let mut message: String = text.chars().take(MAX_ERROR_TEXT).collect();
        if message.is_empty() {
            message = f.map(|f| f.reason.clone()).unwrap_or_default();
        }
        Status { code, reason: reason_for(code).into(), message, raw: Vec::new() }
    }
}

/// The Kubernetes `StatusReason` the apiserver would use for a bare HTTP code.
fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Gone",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}

fn trim_ws(b: &[u8]) -> &[u8] {
    let s = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let e = b.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(s, |i| i + 1);
    &b[s..e.max(s)]
}

/// Decode one line found at body offset `offset`. Blank lines are skipped.
fn process_line(line: &[u8], offset: u64, fp: &FieldPaths, tf: Option<&Transform>, out: &mut Vec<WatchEvent>) -> Result<()> {
    // Fast path: an event line starts with '{' and ends with '}' (or "}\r").
    let trimmed = match (line.first(), line.last()) {
        (Some(b'{'), Some(b'}')) => line,
        _ => trim_ws(line),
    };
    if trimmed.is_empty() {
        return Ok(());
    }
    let lead = (trimmed.as_ptr() as usize - line.as_ptr() as usize) as u64;
    match event::decode_line(trimmed, fp, tf) {
        Ok(Line::Event(ev)) => {
            out.push(ev);
            Ok(())
        }
        Ok(Line::Error(status)) => Err(Error::Api(status)),
        Err(e) => Err(Error::Decode {
            offset,
            message: format!("invalid watch event: {} (at byte {} of the line)", e.msg, e.pos as u64 + lead),
        }),
    }
}

#[cfg(test)]
mod tests;

/// Metadata of one object (e.g. a LIST item) with the decoder's scanner: validates the
/// whole JSON and agrees with the reference `object::extract_meta`.
pub fn extract_meta(json: &[u8]) -> Result<crate::object::Meta> {
    let mut s = scan::Scanner::new(json);
    let mut m = crate::object::Meta::default();
    meta::object_meta(&mut s, &mut m)
        .and_then(|_| s.end())
        .map_err(|e| Error::Decode { offset: 0, message: format!("invalid object JSON: {} (at byte {})", e.msg, e.pos) })?;
    Ok(m)
}
