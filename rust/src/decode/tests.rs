//! Unit tests of the scanner pieces; whole-stream behaviour is in rust/tests/decode_*.rs.

use super::scan::{unescape, Scanner};

#[test]
fn skip_value_spans_and_rejections() {
    let mut s = Scanner::new(br#"  {"a":[1,-2.5e3,true,false,null,"x\u00e9\ud83d\ude80"]} "#);
    s.ws();
    assert_eq!(s.skip_value().unwrap(), (2, 56));
    s.end().unwrap();
    for bad in [&b"{"[..], b"[1 2]", b"\"abc", b"01", b"-", b"1e", b"{\"a\" 1}", b"\"\\x\"", b"nul", b"\"\xc3\x28\""] {
        let mut s = Scanner::new(bad);
        assert!(s.skip_value().and_then(|_| s.end()).is_err(), "{}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = "[".repeat(100_000);
    assert!(Scanner::new(deep.as_bytes()).skip_value().is_err());
}

#[test]
fn unescape_handles_all_escapes() {
    assert_eq!(unescape(br#"a\"\\\/\b\f\n\r\tz\u00e9\ud83d\ude80"#), "a\"\\/\u{8}\u{c}\n\r\tz\u{e9}\u{1F680}");
}

