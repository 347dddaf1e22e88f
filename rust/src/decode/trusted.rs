//! Annotation lookups in JSON that is already known to be valid: the bytes of a cached
//! `Object`, which every constructor validated. `Meta` no longer copies annotations out
//! (the last-applied-configuration annotation alone is ~1 KB per pod), so an annotation
//! index and the decoder's bookmark check read them here. Annotation keys contain dots, so
//! the dotted-path walk of `field` cannot name them.
//!
//! (A non-validating field walk built on this was measured against the validating one and
//! was no faster, ~1 GB/s both: field indexes are captured during decoding instead, see
//! `capture`.) A repeated key's last occurrence wins, as everywhere else.
//!
//! On invalid input these functions give unspecified values, but never panic or read out
//! of bounds.

use super::scan::Scanner;
use super::field::push_scalar;

/// Index after the string whose opening quote is at `i`. Eight bytes at a time: strings
/// are most of a pod's bytes, and most are short, so a `memchr` call per string costs more
/// than it saves.
fn string_end(b: &[u8], i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has = |w: u64, c: u8| {
        let x = w ^ (ONES * c as u64);
        x.wrapping_sub(ONES) & !x & HIGH
    };
    let mut j = i + 1;
    loop {
        while let Some(chunk) = b.get(j..j + 8) {
            let w = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            let m = has(w, b'"') | has(w, b'\\');
            if m != 0 {
                // The lowest flagged byte is a real match (borrows only run upwards).
                j += (m.trailing_zeros() / 8) as usize;
                break;
            }
            j += 8;
        }
        match b.get(j) {
            None => return b.len(),
            Some(b'"') => return j + 1,
            Some(b'\\') => j += 2,
            Some(_) => j += 1,
        }
    }
}

fn ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    i
}

/// Index after the value starting at `i` (no leading whitespace).
fn skip(b: &[u8], mut i: usize) -> usize {
    match b.get(i) {
        Some(b'"') => string_end(b, i),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            while i < b.len() {
                match b[i] {
                    b'"' => {
                        i = string_end(b, i);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            b.len()
        }
        Some(_) => {
            while i < b.len() && !matches!(b[i], b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n') {
                i += 1;
            }
            i
        }
        None => i,
    }
}

/// The span of the member `key` of the object `v` (the last one if repeated), or None if
/// `v` is not an object or has no such member.
fn member<'a>(v: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    if v.first() != Some(&b'{') {
        return None;
    }
    let mut found = None;
    let mut i = ws(v, 1);
    while v.get(i) == Some(&b'"') {
        let k_end = string_end(v, i);
        let raw = v.get(i + 1..k_end.saturating_sub(1))?;
        let is_key = if raw.contains(&b'\\') {
            // Rare (an escaped key); the scanner checks the escapes before unescaping.
            Scanner::new(&v[i..k_end]).str_value().is_ok_and(|r| r.is(key))
        } else {
            raw == key
        };
        i = ws(v, k_end);
        if v.get(i) != Some(&b':') {
            return found;
        }
        let start = ws(v, i + 1);
        let end = skip(v, start);
        if is_key {
            found = Some(v.get(start..end)?);
        }
        i = ws(v, end);
        if v.get(i) != Some(&b',') {
            break;
        }
        i = ws(v, i + 1);
    }
    found
}

/// The document from its first value on (`member` stops at the object's end).
fn root(json: &[u8]) -> &[u8] {
    &json[ws(json, 0)..]
}

/// The value of annotation `key` (`metadata.annotations[key]`) if it is a string.
pub fn annotation_trusted(json: &[u8], key: &str) -> Option<String> {
    let ann = member(member(root(json), b"metadata")?, b"annotations")?;
    let v = member(ann, key.as_bytes())?;
    let mut out = Vec::new();
    if v.first() == Some(&b'"') {
        push_scalar(v, &mut out);
    }
    out.pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCS: &[&str] = &[
        r#"{"kind":"Pod","metadata":{"name":"a","annotations":{"x.io/a":"1","k":"v\"q","k":"last"}},
            "spec":{"nodeName":"n1","ports":[1,2.5,"s",true,null,{"a":1},[3]],"e":{},"f":[],
            "s":"a\\\"b}]","n":-1e3,"nested":{"a":{"b":{"c":"deep"}}}},"spec2":null}"#,
        r#" { "spec" : { "nodeName" : "x" } , "spec" : { "nodeName" : "y" } } "#,
        r#"{"sp\u0065c":{"nodeName":"esc"}}"#,
        r#"["not","an","object"]"#,
        r#""str""#,
        r#"{}"#,
    ];

    #[test]
    fn annotations() {
        let d = DOCS[0].as_bytes();
        assert_eq!(annotation_trusted(d, "x.io/a").as_deref(), Some("1"));
        assert_eq!(annotation_trusted(d, "k").as_deref(), Some("last"));
        assert_eq!(annotation_trusted(d, "nope"), None);
        assert_eq!(annotation_trusted(br#"{"metadata":{"annotations":null}}"#, "k"), None);
        assert_eq!(annotation_trusted(br#"{"metadata":null}"#, "k"), None);
    }

    #[test]
    fn invalid_input_does_not_panic() {
        for doc in DOCS {
            for cut in 0..doc.len() {
                let _ = annotation_trusted(&doc.as_bytes()[..cut], "k");
            }
        }
    }
}
