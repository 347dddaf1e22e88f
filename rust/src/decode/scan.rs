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

/// Deeper nesting is rejected rather than risking the stack (Kubernetes objects nest a
/// few dozen levels at most).
const MAX_DEPTH: u32 = 1000;

pub struct Scanner<'a> {
    buf: &'a [u8],
    pos: usize,
    depth: u32,
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
        Scanner { buf, pos: 0, depth: 0 }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn err<T>(&self, msg: &'static str) -> ScanResult<T> {
        Err(ScanError { pos: self.pos, msg })
    }

    #[inline]
    pub fn ws(&mut self) {
        while let Some(&c) = self.buf.get(self.pos) {
            if c == b' ' || c == b'\n' || c == b'\r' || c == b'\t' {
                self.pos += 1;
            } else {
                break;
            }
        }
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
        match self.peek() {
            Some(b'{') => self.object(|s, _| s.skip_value().map(|_| ()))?,
            Some(b'[') => self.array(|s| s.skip_value().map(|_| ()))?,
            Some(b'"') => {
                self.string()?;
            }
            Some(b't') => self.literal(b"true")?,
            Some(b'f') => self.literal(b"false")?,
            Some(b'n') => self.literal(b"null")?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            Some(_) => return self.err("expected a JSON value"),
            None => return self.err("unexpected end of input"),
        }
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

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> ScanResult<()> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return self.err("invalid number"),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return self.err("invalid number: digit expected after '.'");
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return self.err("invalid number: digit expected in exponent");
            }
        }
        Ok(())
    }

    /// A string starting at the opening quote. Validates escapes (incl. surrogate pairs),
    /// rejects raw control characters and checks UTF-8 of non-ASCII bytes.
    fn string(&mut self) -> ScanResult<RawStr<'a>> {
        self.pos += 1; // opening quote
        let start = self.pos;
        let mut escaped = false;
        loop {
            self.pos = find_special(self.buf, self.pos);
            let Some(&c) = self.buf.get(self.pos) else {
                return self.err("unterminated string");
            };
            match c {
                b'"' => {
                    let raw = &self.buf[start..self.pos];
                    self.pos += 1;
                    return Ok(RawStr { raw, escaped });
                }
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                0x80.. => self.utf8_char()?,
                _ => return self.err("control character in string"),
            }
        }
    }

    fn hex4(&mut self) -> ScanResult<u16> {
        let Some(h) = self.buf.get(self.pos..self.pos + 4) else {
            return self.err("truncated \\u escape");
        };
        let mut v: u16 = 0;
        for &b in h {
            let d = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                b'A'..=b'F' => b - b'A' + 10,
                _ => return self.err("invalid \\u escape"),
            };
            v = (v << 4) | d as u16;
        }
        self.pos += 4;
        Ok(v)
    }

    fn escape(&mut self) -> ScanResult<()> {
        match self.buf.get(self.pos + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.pos += 2;
                Ok(())
            }
            Some(b'u') => {
                self.pos += 2;
                let u = self.hex4()?;
                match u {
                    0xD800..=0xDBFF => {
                        if self.buf.get(self.pos..self.pos + 2) != Some(b"\\u") {
                            return self.err("lone leading surrogate in \\u escape");
                        }
                        self.pos += 2;
                        if !(0xDC00..=0xDFFF).contains(&self.hex4()?) {
                            return self.err("invalid trailing surrogate in \\u escape");
                        }
                    }
                    0xDC00..=0xDFFF => return self.err("lone trailing surrogate in \\u escape"),
                    _ => {}
                }
                Ok(())
            }
            _ => self.err("invalid escape"),
        }
    }

    /// One non-ASCII UTF-8 sequence (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
    fn utf8_char(&mut self) -> ScanResult<()> {
        let b = &self.buf[self.pos..];
        let n = match b[0] {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => return self.err("invalid UTF-8"),
        };
        if b.len() < n || std::str::from_utf8(&b[..n]).is_err() {
            return self.err("invalid UTF-8");
        }
        self.pos += n;
        Ok(())
    }
}

/// Index of the first byte at or after `i` that ends the fast path of a string: `"`, `\`,
/// a control character or a non-ASCII byte (or `buf.len()`).
#[inline]
fn find_special(buf: &[u8], mut i: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        // SSE2 is part of the x86_64 baseline, so no runtime detection is needed. A signed
        // compare `< 0x20` catches both control characters and bytes >= 0x80.
        use std::arch::x86_64::*;
        unsafe {
            let quote = _mm_set1_epi8(b'"' as i8);
            let bslash = _mm_set1_epi8(b'\\' as i8);
            let space = _mm_set1_epi8(0x20);
            while i + 16 <= buf.len() {
                let v = _mm_loadu_si128(buf.as_ptr().add(i) as *const __m128i);
                let m = _mm_or_si128(
                    _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                    _mm_cmplt_epi8(v, space),
                );
                let mask = _mm_movemask_epi8(m);
                if mask != 0 {
                    return i + mask.trailing_zeros() as usize;
                }
                i += 16;
            }
        }
    }
    while i < buf.len() {
        let c = buf[i];
        if c == b'"' || c == b'\\' || !(0x20..0x80).contains(&c) {
            return i;
        }
        i += 1;
    }
    i
}

/// Decode a validated string body (escapes already checked by the scanner).
pub fn unescape(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    let hex = |s: &[u8]| -> u32 { u32::from_str_radix(std::str::from_utf8(s).unwrap_or("0"), 16).unwrap_or(0) };
    while i < raw.len() {
        let c = raw[i];
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let e = raw[i + 1];
        i += 2;
        let ch = match e {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            _ => {
                let hi = hex(&raw[i..i + 4]);
                i += 4;
                let cp = if (0xD800..0xDC00).contains(&hi) {
                    let lo = hex(&raw[i + 2..i + 6]);
                    i += 6;
                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                } else {
                    hi
                };
                char::from_u32(cp).unwrap_or('\u{fffd}')
            }
        };
        let mut tmp = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
    }
    // Input was valid UTF-8 and escapes produce valid chars.
    String::from_utf8(out).unwrap_or_default()
}
