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

    /// A scanner for one watch line, where '\n' ends the line and is never whitespace.
    pub fn line(buf: &'a [u8]) -> Self {
        Scanner { buf, pos: 0, depth: 0, nl_ws: false }
    }

    pub fn pos(&self) -> usize {
        self.pos
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

/// Skip one value starting at `i` (no leading whitespace), validating it; returns the
/// index after it. Iterative, with the open containers kept as a bit stack (1 = object),
/// because this loop is where the decoder spends most of its time (spec, status and
/// managedFields of every object are skipped) and recursion through closures was
/// measurably slower.
pub(super) fn skip(buf: &[u8], mut i: usize, max_depth: u32, nl: bool) -> ScanResult<usize> {
    let err = |pos: usize, msg: &'static str| Err(ScanError { pos, msg });
    let mut stack = [0u64; (MAX_DEPTH as usize).div_ceil(64)];
    let mut depth: usize = 0;
    loop {
        // A value starts at `i`.
        match at(buf, i) {
            b'"' => i = string_end(buf, i + 1)?.0,
            b'{' => {
                if depth as u32 >= max_depth {
                    return err(i, "nesting too deep");
                }
                stack[depth / 64] |= 1 << (depth % 64);
                depth += 1;
                i = skip_ws(buf, i + 1, nl);
                if at(buf, i) == b'}' {
                    depth -= 1;
                    i += 1;
                } else {
                    i = key_colon(buf, i, nl)?;
                    continue;
                }
            }
            b'[' => {
                if depth as u32 >= max_depth {
                    return err(i, "nesting too deep");
                }
                stack[depth / 64] &= !(1 << (depth % 64));
                depth += 1;
                i = skip_ws(buf, i + 1, nl);
                if at(buf, i) == b']' {
                    depth -= 1;
                    i += 1;
                } else {
                    continue;
                }
            }
            b't' => i = literal_end(buf, i, b"true")?,
            b'f' => i = literal_end(buf, i, b"false")?,
            b'n' => i = literal_end(buf, i, b"null")?,
            b'-' | b'0'..=b'9' => i = number_end(buf, i)?,
            0 if i >= buf.len() => return err(i, "unexpected end of input"),
            _ => return err(i, "expected a JSON value"),
        }
        // After a value: close containers until one continues with ','.
        loop {
            if depth == 0 {
                return Ok(i);
            }
            i = skip_ws(buf, i, nl);
            let top = depth - 1;
            let in_object = stack[top / 64] & (1 << (top % 64)) != 0;
            match at(buf, i) {
                b',' => {
                    i = skip_ws(buf, i + 1, nl);
                    if in_object {
                        i = key_colon(buf, i, nl)?;
                    }
                    break;
                }
                b'}' if in_object => {
                    depth -= 1;
                    i += 1;
                }
                b']' if !in_object => {
                    depth -= 1;
                    i += 1;
                }
                _ if in_object => return err(i, "expected ',' or '}'"),
                _ => return err(i, "expected ',' or ']'"),
            }
        }
    }
}

/// `"key"` then `:` then whitespace; returns the index of the value.
#[inline(always)]
fn key_colon(buf: &[u8], i: usize, nl: bool) -> ScanResult<usize> {
    if at(buf, i) != b'"' {
        return Err(ScanError { pos: i, msg: "expected a string key" });
    }
    let mut i = string_end(buf, i + 1)?.0;
    if at(buf, i) != b':' {
        i = skip_ws(buf, i, nl);
        if at(buf, i) != b':' {
            return Err(ScanError { pos: i, msg: "expected ':'" });
        }
    }
    Ok(skip_ws(buf, i + 1, nl))
}

#[inline(always)]
fn skip_ws(buf: &[u8], mut i: usize, nl: bool) -> usize {
    loop {
        match at(buf, i) {
            b' ' | b'\r' | b'\t' => i += 1,
            b'\n' if nl => i += 1,
            _ => return i,
        }
    }
}

#[inline]
fn literal_end(buf: &[u8], i: usize, lit: &'static [u8]) -> ScanResult<usize> {
    if buf[i..].starts_with(lit) {
        Ok(i + lit.len())
    } else {
        Err(ScanError { pos: i, msg: "invalid literal" })
    }
}

#[inline]
fn number_end(buf: &[u8], mut i: usize) -> ScanResult<usize> {
    let bad = |pos| Err(ScanError { pos, msg: "invalid number" });
    if at(buf, i) == b'-' {
        i += 1;
    }
    match at(buf, i) {
        b'0' => i += 1,
        b'1'..=b'9' => {
            i += 1;
            while at(buf, i).is_ascii_digit() {
                i += 1;
            }
        }
        _ => return bad(i),
    }
    if at(buf, i) == b'.' {
        i += 1;
        if !at(buf, i).is_ascii_digit() {
            return bad(i);
        }
        while at(buf, i).is_ascii_digit() {
            i += 1;
        }
    }
    if matches!(at(buf, i), b'e' | b'E') {
        i += 1;
        if matches!(at(buf, i), b'+' | b'-') {
            i += 1;
        }
        if !at(buf, i).is_ascii_digit() {
            return bad(i);
        }
        while at(buf, i).is_ascii_digit() {
            i += 1;
        }
    }
    Ok(i)
}

/// The byte at `i`, or 0 past the end (0 is never valid outside a string, so running off
/// the end reads as a syntax error without a separate bounds check).
#[inline(always)]
pub(super) fn at(buf: &[u8], i: usize) -> u8 {
    if i < buf.len() {
        // SAFETY: bounds checked just above.
        unsafe { *buf.get_unchecked(i) }
    } else {
        0
    }
}

/// Scan a string body starting just after its opening quote. Validates escapes (incl.
/// surrogate pairs), rejects raw control characters and checks UTF-8 of non-ASCII bytes.
/// Returns the index after the closing quote and whether it contained escapes.
#[inline]
pub(super) fn string_end(buf: &[u8], mut i: usize) -> ScanResult<(usize, bool)> {
    let mut escaped = false;
    loop {
        let (j, is_quote) = find_special(buf, i);
        i = j;
        if is_quote {
            return Ok((i + 1, escaped));
        }
        match at(buf, i) {
            b'\\' => {
                escaped = true;
                // `\"` and friends inline: last-applied-configuration is full of them.
                i = match at(buf, i + 1) {
                    b'"' | b'\\' | b'/' | b'n' => i + 2,
                    _ => escape_end(buf, i)?,
                };
            }
            0x80.. => i = utf8_end(buf, i)?,
            _ if i >= buf.len() => return Err(ScanError { pos: i, msg: "unterminated string" }),
            _ => return Err(ScanError { pos: i, msg: "control character in string" }),
        }
    }
}

fn hex4(buf: &[u8], i: usize) -> ScanResult<u16> {
    let Some(h) = buf.get(i..i + 4) else {
        return Err(ScanError { pos: i, msg: "truncated \\u escape" });
    };
    let mut v: u16 = 0;
    for &b in h {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return Err(ScanError { pos: i, msg: "invalid \\u escape" }),
        };
        v = (v << 4) | d as u16;
    }
    Ok(v)
}

/// One escape sequence at `i` (the backslash); returns the index after it.
#[cold]
fn escape_end(buf: &[u8], i: usize) -> ScanResult<usize> {
    match at(buf, i + 1) {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Ok(i + 2),
        b'u' => {
            let u = hex4(buf, i + 2)?;
            match u {
                0xD800..=0xDBFF => {
                    if buf.get(i + 6..i + 8) != Some(b"\\u") {
                        return Err(ScanError { pos: i, msg: "lone leading surrogate in \\u escape" });
                    }
                    if !(0xDC00..=0xDFFF).contains(&hex4(buf, i + 8)?) {
                        return Err(ScanError { pos: i, msg: "invalid trailing surrogate in \\u escape" });
                    }
                    Ok(i + 12)
                }
                0xDC00..=0xDFFF => Err(ScanError { pos: i, msg: "lone trailing surrogate in \\u escape" }),
                _ => Ok(i + 6),
            }
        }
        _ => Err(ScanError { pos: i, msg: "invalid escape" }),
    }
}

/// One non-ASCII UTF-8 sequence at `i` (RFC 3629: no overlongs, no surrogates,
/// <= U+10FFFF); returns the index after it.
#[cold]
fn utf8_end(buf: &[u8], i: usize) -> ScanResult<usize> {
    let b = &buf[i..];
    let n = match b[0] {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return Err(ScanError { pos: i, msg: "invalid UTF-8" }),
    };
    if b.len() < n || std::str::from_utf8(&b[..n]).is_err() {
        return Err(ScanError { pos: i, msg: "invalid UTF-8" });
    }
    Ok(i + n)
}

/// Index of the first byte at or after `i` that ends the fast path of a string: `"`, `\`,
/// a control character or a non-ASCII byte (or `buf.len()`), and whether it is the `"`.
/// Returning the flag from the vector masks keeps a reload of the byte off the critical
/// path of the (very common) short string.
#[inline(always)]
fn find_special(buf: &[u8], mut i: usize) -> (usize, bool) {
    #[cfg(target_arch = "x86_64")]
    {
        // SSE2 is part of the x86_64 baseline, so no runtime detection is needed. A signed
        // compare `< 0x20` catches both control characters and bytes >= 0x80.
        use std::arch::x86_64::*;
        // SAFETY: every load reads 16 bytes at `i` with `i + 16 <= buf.len()`.
        unsafe {
            let quote = _mm_set1_epi8(b'"' as i8);
            let bslash = _mm_set1_epi8(b'\\' as i8);
            let space = _mm_set1_epi8(0x20);
            while i + 16 <= buf.len() {
                let v = _mm_loadu_si128(buf.as_ptr().add(i) as *const __m128i);
                let q = _mm_cmpeq_epi8(v, quote);
                let m = _mm_or_si128(_mm_or_si128(q, _mm_cmpeq_epi8(v, bslash)), _mm_cmplt_epi8(v, space));
                let mask = _mm_movemask_epi8(m) as u32;
                if mask != 0 {
                    let t = mask.trailing_zeros();
                    let is_quote = (_mm_movemask_epi8(q) as u32 >> t) & 1 != 0;
                    return (i + t as usize, is_quote);
                }
                i += 16;
            }
        }
    }
    while i < buf.len() {
        let c = buf[i];
        if c == b'"' || c == b'\\' || !(0x20..0x80).contains(&c) {
            return (i, c == b'"');
        }
        i += 1;
    }
    (i, false)
}

/// Length of `unescape(raw)` for a validated string body.
fn unescaped_len(raw: &[u8]) -> usize {
    let (mut n, mut i) = (raw.len(), 0);
    while let Some(j) = raw[i..].iter().position(|&b| b == b'\\') {
        i += j;
        if raw[i + 1] != b'u' {
            n -= 1;
            i += 2;
            continue;
        }
        let hex = |s: &[u8]| s.iter().fold(0u32, |v, &b| (v << 4) | (b as char).to_digit(16).unwrap_or(0));
        let cp = hex(&raw[i + 2..i + 6]);
        if (0xD800..0xDC00).contains(&cp) {
            n -= 12 - 4; // a surrogate pair is 4 bytes of UTF-8
            i += 12;
        } else {
            n -= 6 - char::from_u32(cp).map_or(3, char::len_utf8);
            i += 6;
        }
    }
    n
}

/// Decode a validated string body (escapes already checked by the scanner). Runs between
/// escapes are short (last-applied-configuration annotations are full of `\"`), so a
/// plain byte search beats memchr's per-call setup here.
pub fn unescape(raw: &[u8]) -> String {
    // Size the output exactly (one cheap pass), so that `into_boxed_str` does not realloc.
    let mut out = Vec::with_capacity(unescaped_len(raw));
    let mut i = 0;
    let hex = |s: &[u8]| -> u32 { s.iter().fold(0, |v, &b| (v << 4) | (b as char).to_digit(16).unwrap_or(0)) };
    while i < raw.len() {
        let Some(j) = raw[i..].iter().position(|&b| b == b'\\') else {
            out.extend_from_slice(&raw[i..]);
            break;
        };
        out.extend_from_slice(&raw[i..i + j]);
        i += j;
        let e = raw[i + 1];
        i += 2;
        let byte = match e {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 8,
            b'f' => 12,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
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
                let mut tmp = [0u8; 4];
                out.extend_from_slice(char::from_u32(cp).unwrap_or('\u{fffd}').encode_utf8(&mut tmp).as_bytes());
                continue;
            }
        };
        out.push(byte);
    }
    // Input was valid UTF-8 and escapes produce valid chars.
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
pub(super) fn unescaped_len_for_tests(raw: &[u8]) -> usize {
    unescaped_len(raw)
}
