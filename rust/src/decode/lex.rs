//! Byte-level lexing for the scanner: skipping whole values, strings (escapes, UTF-8),
//! numbers, literals, whitespace. Free functions over `(buf, index)` so the hot skip loop
//! keeps everything in registers; `scan::Scanner` wraps them for the extraction code.

use super::scan::{ScanError, ScanResult, MAX_DEPTH};

/// Skip one value starting at `i` (no leading whitespace), validating it; returns the
/// index after it. Iterative, with the open containers kept as a bit stack (1 = object),
/// because this loop is where the decoder spends most of its time (spec, status and
/// managedFields of every object are skipped) and recursion through closures was
/// measurably slower.
pub(super) fn skip(buf: &[u8], mut i: usize, max_depth: u32, nl: bool) -> ScanResult<usize> {
    let err = |pos: usize, msg: &'static str| Err(ScanError { pos, msg });
    let mut stack = [0u64; (MAX_DEPTH as usize).div_ceil(64)];
    let is_object = |stack: &[u64], level: usize| stack[level / 64] & (1 << (level % 64)) != 0;
    let mut depth: usize = 0;
    // Whether the innermost open container is an object (kept in a register; the stack is
    // only read when a container closes).
    let mut in_object = false;
    // The byte at `i` is carried along (`c`), so that each byte is loaded once.
    let mut c = at(buf, i);
    loop {
        // A value starts at `i`.
        match c {
            b'"' => i = string_end(buf, i + 1)?.0,
            b'{' | b'[' => {
                if depth as u32 >= max_depth {
                    return err(i, "nesting too deep");
                }
                let object = c == b'{';
                if object {
                    stack[depth / 64] |= 1 << (depth % 64);
                } else {
                    stack[depth / 64] &= !(1 << (depth % 64));
                }
                depth += 1;
                in_object = object;
                (i, c) = ws_byte(buf, i + 1, nl);
                if c == if object { b'}' } else { b']' } {
                    i += 1;
                    depth -= 1;
                    in_object = depth > 0 && is_object(&stack, depth - 1);
                } else {
                    if object {
                        (i, c) = key_colon(buf, i, c, nl)?;
                    }
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
            (i, c) = ws_byte(buf, i, nl);
            match c {
                b',' => {
                    (i, c) = ws_byte(buf, i + 1, nl);
                    if in_object {
                        (i, c) = key_colon(buf, i, c, nl)?;
                    }
                    break;
                }
                b'}' if in_object => {}
                b']' if !in_object => {}
                _ if in_object => return err(i, "expected ',' or '}'"),
                _ => return err(i, "expected ',' or ']'"),
            }
            i += 1;
            depth -= 1;
            in_object = depth > 0 && is_object(&stack, depth - 1);
        }
    }
}

/// `"key"` (`c` is the byte at `i`) then `:` then whitespace; returns the index and first
/// byte of the value.
#[inline(always)]
fn key_colon(buf: &[u8], i: usize, c: u8, nl: bool) -> ScanResult<(usize, u8)> {
    if c != b'"' {
        return Err(ScanError { pos: i, msg: "expected a string key" });
    }
    let mut i = string_end(buf, i + 1)?.0;
    let mut c = at(buf, i);
    if c != b':' {
        (i, c) = ws_byte(buf, i, nl);
        if c != b':' {
            return Err(ScanError { pos: i, msg: "expected ':'" });
        }
    }
    Ok(ws_byte(buf, i + 1, nl))
}

/// The first non-whitespace index at or after `i`, and its byte.
#[inline(always)]
fn ws_byte(buf: &[u8], mut i: usize, nl: bool) -> (usize, u8) {
    loop {
        let c = at(buf, i);
        match c {
            b' ' | b'\r' | b'\t' => i += 1,
            b'\n' if nl => i += 1,
            _ => return (i, c),
        }
    }
}

#[inline(always)]
pub(super) fn skip_ws(buf: &[u8], i: usize, nl: bool) -> usize {
    ws_byte(buf, i, nl).0
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
#[inline(always)]
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

