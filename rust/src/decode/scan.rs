//! A validating JSON scanner that walks one watch line once, checks the whole grammar
//! (RFC 8259: strings incl. escapes and UTF-8, numbers, literals, nesting) and lets the
//! caller pick out the few values it needs while everything else is skipped without
//! building anything. Measured against serde_json, sonic-rs and simd-json in
//! `benches/parsers/` (see its README): skipping is where the time goes for a 4.5 KB pod,
//! and a skip that only classifies bytes beats any parser that materialises values.

/// Where and why the input stopped being JSON; `pos` is relative to the scanned buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanError {
    pub pos: usize,
    pub msg: &'static str,
}

pub type ScanResult<T> = std::result::Result<T, ScanError>;

use super::lex::{skip, skip_ws, string_end};

/// Deeper nesting is rejected rather than risking the stack (Kubernetes objects nest a
/// few dozen levels at most).
pub(super) const MAX_DEPTH: u32 = 1000;

pub struct Scanner<'a> {
    buf: &'a [u8],
    pos: usize,
    depth: u32,
    /// Whether '\n' counts as whitespace. Not inside a watch line: the decoder parses
    /// lines in place without first searching for their '\n', which is only equivalent to
    /// splitting first if a newline can never be part of a value.
    nl_ws: bool,
}

/// A JSON string as it appears on the wire (between the quotes). `escaped` says whether
/// it must be unescaped before use.
#[derive(Clone, Copy)]
pub struct RawStr<'a> {
    pub raw: &'a [u8],
    pub escaped: bool,
}

impl<'a> RawStr<'a> {
    /// The decoded text. Escapes were validated by the scanner, so this cannot fail.
    pub fn to_boxed(self) -> Box<str> {
        if !self.escaped {
            // The scanner validated UTF-8 inside strings.
            return unsafe { std::str::from_utf8_unchecked(self.raw) }.into();
        }
        unescape(self.raw).into_boxed_str()
    }

    /// The decoded text as a metadata string (inline when short, so usually no allocation).
    pub fn to_text(self) -> crate::object::Text {
        if !self.escaped {
            // The scanner validated UTF-8 inside strings.
            return unsafe { std::str::from_utf8_unchecked(self.raw) }.into();
        }
        unescape(self.raw).into()
    }

    /// The decoded text, borrowed unless escaped.
    pub fn to_cow(self) -> std::borrow::Cow<'a, str> {
        if !self.escaped {
            // The scanner validated UTF-8 inside strings.
            return std::borrow::Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(self.raw) });
        }
        std::borrow::Cow::Owned(unescape(self.raw))
    }

    /// Compare with an ASCII key without allocating in the common (unescaped) case.
    pub fn is(self, s: &[u8]) -> bool {
        if !self.escaped {
            self.raw == s
        } else {
            unescape(self.raw).as_bytes() == s
        }
    }
}

impl<'a> Scanner<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Scanner { buf, pos: 0, depth: 0, nl_ws: true }
    }

    /// A scanner over `buf` starting at `pos` (re-reading a value found before).
    pub fn at(buf: &'a [u8], pos: usize) -> Self {
        Scanner { buf, pos, depth: 0, nl_ws: true }
    }

    /// A scanner for one watch line, where '\n' ends the line and is never whitespace.
    pub fn line(buf: &'a [u8]) -> Self {
        Scanner { buf, pos: 0, depth: 0, nl_ws: false }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Where `r` (a string this scanner returned) is in the scanned buffer.
    pub fn json_str(&self, r: RawStr<'a>) -> crate::object::JsonStr {
        let start = r.raw.as_ptr() as usize - self.buf.as_ptr() as usize;
        debug_assert!(start + r.raw.len() <= self.buf.len());
        crate::object::JsonStr::new(start, r.raw.len(), r.escaped)
    }

    pub fn err<T>(&self, msg: &'static str) -> ScanResult<T> {
        Err(ScanError { pos: self.pos, msg })
    }

    #[inline]
    pub fn ws(&mut self) {
        self.pos = skip_ws(self.buf, self.pos, self.nl_ws);
    }

    #[inline]
    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// After the top-level value: only whitespace may follow.
    pub fn end(&mut self) -> ScanResult<()> {
        self.ws();
        if self.pos != self.buf.len() {
            return self.err("trailing characters after the JSON value");
        }
        Ok(())
    }

    /// Walk an object, calling `f` with each key; `f` must consume the value (with
    /// `skip_value` or one of the typed readers). Whitespace around values is handled here.
    #[inline]
    pub fn object<F>(&mut self, mut f: F) -> ScanResult<()>
    where
        F: FnMut(&mut Self, RawStr<'a>) -> ScanResult<()>,
    {
        self.ws();
        if self.peek() != Some(b'{') {
            return self.err("expected an object");
        }
        self.enter()?;
        self.pos += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            if self.peek() != Some(b'"') {
                return self.err("expected a string key");
            }
            let key = self.string()?;
            self.ws();
            if self.peek() != Some(b':') {
                return self.err("expected ':'");
            }
            self.pos += 1;
            self.ws();
            f(self, key)?;
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.ws();
                }
                Some(b'}') => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return self.err("expected ',' or '}'"),
            }
        }
    }

    /// Walk an array, calling `f` for each element (which it must consume).
    pub fn array<F>(&mut self, mut f: F) -> ScanResult<()>
    where
        F: FnMut(&mut Self) -> ScanResult<()>,
    {
        self.ws();
        if self.peek() != Some(b'[') {
            return self.err("expected an array");
        }
        self.enter()?;
        self.pos += 1;
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            f(self)?;
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.ws();
                }
                Some(b']') => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return self.err("expected ',' or ']'"),
            }
        }
    }

    fn enter(&mut self) -> ScanResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err("nesting too deep");
        }
        Ok(())
    }

    /// Is the next value `null`? Consumes it if so.
    pub fn null(&mut self) -> ScanResult<bool> {
        if self.peek() == Some(b'n') {
            self.literal(b"null")?;
            return Ok(true);
        }
        Ok(false)
    }

    /// A string value (not null): serde's `String`/`Cow<str>` accepts nothing else.
    pub fn str_value(&mut self) -> ScanResult<RawStr<'a>> {
        if self.peek() != Some(b'"') {
            return self.err("expected a string");
        }
        self.string()
    }

    /// `true`, `false` or `null` (None), as serde's `Option<bool>`.
    pub fn opt_bool(&mut self) -> ScanResult<Option<bool>> {
        match self.peek() {
            Some(b't') => self.literal(b"true").map(|_| Some(true)),
            Some(b'f') => self.literal(b"false").map(|_| Some(false)),
            Some(b'n') => self.literal(b"null").map(|_| None),
            _ => self.err("expected a boolean"),
        }
    }

    /// Skip any value, validating it; returns its span in the buffer.
    pub fn skip_value(&mut self) -> ScanResult<(usize, usize)> {
        let start = self.pos;
        let budget = MAX_DEPTH - self.depth;
        self.pos = skip(self.buf, self.pos, budget, self.nl_ws)?;
        Ok((start, self.pos))
    }

    fn literal(&mut self, lit: &'static [u8]) -> ScanResult<()> {
        if self.buf[self.pos..].starts_with(lit) {
            self.pos += lit.len();
            Ok(())
        } else {
            self.err("invalid literal")
        }
    }

    /// A string starting at the opening quote.
    fn string(&mut self) -> ScanResult<RawStr<'a>> {
        let start = self.pos + 1;
        let (end, escaped) = string_end(self.buf, start)?;
        self.pos = end;
        Ok(RawStr { raw: &self.buf[start..end - 1], escaped })
    }
}

/// Decode a validated string body (escapes already checked by the scanner). One byte
/// loop writing into a buffer sized for the worst case: escapes are dense in
/// last-applied-configuration annotations (`\"` every few bytes), where per-run memchr or
/// memcpy calls cost more than they save.
pub fn unescape(raw: &[u8]) -> String {
    let hex = |s: &[u8]| -> u32 { s.iter().fold(0, |v, &b| (v << 4) | (b as char).to_digit(16).unwrap_or(0)) };
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    let dst = out.as_mut_ptr();
    let (mut i, mut n) = (0, 0);
    // Invariant: n <= i, since no escape decodes to more bytes than it occupies; so every
    // write below stays inside the `raw.len()` capacity.
    while i < raw.len() {
        let c = raw[i];
        if c != b'\\' {
            // SAFETY: n < raw.len() by the invariant.
            unsafe { *dst.add(n) = c };
            n += 1;
            i += 1;
            continue;
        }
        let simple = match raw[i + 1] {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'/' => Some(b'/'),
            b'b' => Some(8),
            b'f' => Some(12),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            _ => None,
        };
        if let Some(b) = simple {
            // SAFETY: as above.
            unsafe { *dst.add(n) = b };
            n += 1;
            i += 2;
            continue;
        }
        let hi = hex(&raw[i + 2..i + 6]);
        let cp = if (0xD800..0xDC00).contains(&hi) {
            let lo = hex(&raw[i + 8..i + 12]);
            i += 12;
            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
        } else {
            i += 6;
            hi
        };
        let mut tmp = [0u8; 4];
        let enc = char::from_u32(cp).unwrap_or('\u{fffd}').encode_utf8(&mut tmp).as_bytes();
        // SAFETY: 6 (or 12) input bytes became at most 3 (or 4) output bytes.
        unsafe { std::ptr::copy_nonoverlapping(enc.as_ptr(), dst.add(n), enc.len()) };
        n += enc.len();
    }
    // SAFETY: n bytes were initialised above.
    unsafe { out.set_len(n) };
    // Input was valid UTF-8 and escapes produce valid chars.
    String::from_utf8(out).unwrap_or_default()
}
