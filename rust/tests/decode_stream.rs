//! The decoder over whole streams: any split gives the same events, framing variants,
//! errors with their offsets, truncation at EOF.

#[path = "support/pods.rs"]
mod pods;

use kfast_native::decode::{Decoder, DecoderOptions, EventKind, WatchEvent};
use kfast_native::error::Error;
use proptest::prelude::*;

type Summary = (EventKind, String, String, Vec<u8>, bool);

fn summary(evs: &[WatchEvent]) -> Vec<Summary> {
    evs.iter()
        .map(|e| {
            let (key, json) = e.object.as_ref().map(|o| (o.key.to_string(), o.json.to_vec())).unwrap_or_default();
            (e.kind, e.resource_version.to_string(), key, json, e.initial_events_end)
        })
        .collect()
}

/// Feed `parts` in order, then finish; returns the events and the first error.
fn run(http: bool, parts: &[&[u8]]) -> (Vec<Summary>, Option<Error>) {
    let mut d = Decoder::new(DecoderOptions { http, ..Default::default() });
    let mut out = Vec::new();
    for p in parts {
        if let Err(e) = d.feed(p, &mut out) {
            return (summary(&out), Some(e));
        }
    }
    let err = d.finish().err();
    (summary(&out), err)
}

fn small_stream() -> (Vec<String>, Vec<u8>) {
    let mut lines = vec![
        pods::event_line("ADDED", &pods::pod(13)), // has non-ASCII and \u escapes
        "\n".to_string(),
        "\r\n".to_string(),
        pods::event_line(
            "BOOKMARK",
            r#"{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"777","annotations":{"k8s.io/initial-events-end":"true"}}}"#,
        ),
        r#"{"object":{"metadata":{"name":"n","namespace":"é","resourceVersion":"9"}},"extra":[1,{"a":null}],"type":"DELETED"}"#.to_string() + "\r\n",
    ];
    lines.push(pods::event_line("MODIFIED", &pods::pod(2)).replace(",\"", ", \""));
    let resp = pods::chunked_response(&lines, true);
    (lines, resp)
}

#[test]
fn every_two_way_split_gives_the_same_events() {
    let (_, resp) = small_stream();
    let (whole, err) = run(true, &[&resp]);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(whole.len(), 4);
    assert_eq!(whole[1].0, EventKind::Bookmark);
    assert!(whole[1].4);
    assert_eq!(whole[2].2, "é/n");
    for cut in 0..=resp.len() {
        let (evs, err) = run(true, &[&resp[..cut], &resp[cut..]]);
        assert!(err.is_none(), "cut {cut}: {err:?}");
        assert_eq!(evs, whole, "cut {cut}");
    }
}

#[test]
fn one_byte_feeds_give_the_same_events() {
    let (lines, resp) = small_stream();
    let (whole, _) = run(true, &[&resp]);
    let bytes: Vec<&[u8]> = resp.chunks(1).collect();
    assert_eq!(run(true, &bytes), (whole.clone(), None));
    // The body-only decoder on the de-chunked body.
    let body: String = lines.concat();
    let (b_whole, e) = run(false, &[body.as_bytes()]);
    assert_eq!((b_whole.clone(), e), (whole, None));
    let bytes: Vec<&[u8]> = body.as_bytes().chunks(1).collect();
    assert_eq!(run(false, &bytes), (b_whole, None));
}

proptest! {
    #[test]
    fn random_splits_give_the_same_events(cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..40), http in any::<bool>()) {
        let (lines, resp) = small_stream();
        let body = lines.concat().into_bytes();
        let data = if http { resp } else { body };
        let (whole, _) = run(http, &[&data]);
        let mut offs: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
        offs.push(0);
        offs.push(data.len());
        offs.sort();
        let parts: Vec<&[u8]> = offs.windows(2).map(|w| &data[w[0]..w[1]]).collect();
        prop_assert_eq!(run(http, &parts), (whole, None));
    }
}

#[test]
fn a_chunk_can_hold_many_events_and_an_event_many_chunks() {
    let lines: Vec<String> = pods::events(20);
    let body = lines.concat();
    // Re-chunk the body at odd sizes, with chunk extensions and a trailer.
    let mut resp = b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, CHUNKED\r\n\r\n".to_vec();
    for (i, piece) in body.as_bytes().chunks(7001).enumerate() {
        resp.extend_from_slice(format!("{:X};ext{i}=\"v\" \r\n", piece.len()).as_bytes());
        resp.extend_from_slice(piece);
        resp.extend_from_slice(b"\r\n");
    }
    resp.extend_from_slice(b"0;last\r\nX-Trailer: yes\r\n\r\n");
    let (evs, err) = run(true, &[&resp]);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(evs, run(false, &[body.as_bytes()]).0);
    assert_eq!(evs.len(), 20);
}

#[test]
fn head_and_state_are_reported() {
    let (_, resp) = small_stream();
    let mut d = Decoder::new(DecoderOptions::default());
    let mut out = Vec::new();
    assert_eq!(d.status_code(), None);
    d.feed(&resp[..20], &mut out).unwrap();
    assert_eq!(d.status_code(), None);
    d.feed(&resp[20..], &mut out).unwrap();
    assert_eq!(d.status_code(), Some(200));
    let h = d.headers().unwrap();
    assert!(h.iter().any(|(k, v)| k == "Content-Type" && v == "application/json"));
    assert!(d.complete());
    assert_eq!(d.body_offset() as usize, small_stream().0.concat().len());
    d.finish().unwrap();
    assert_eq!(Decoder::new(DecoderOptions { http: false, ..Default::default() }).status_code(), Some(200));
}

#[test]
fn interim_100_continue_is_skipped() {
    let (_, resp) = small_stream();
    let mut with = b"HTTP/1.1 100 Continue\r\n\r\n".to_vec();
    with.extend_from_slice(&resp);
    assert_eq!(run(true, &[&with]), run(true, &[&resp]));
}

#[test]
fn content_length_and_until_close_bodies() {
    let body = pods::events(5).concat();
    let cl = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    let (evs, err) = run(true, &[cl.as_bytes()]);
    assert!(err.is_none());
    assert_eq!(evs.len(), 5);
    // Short of Content-Length: truncated.
    let (evs2, err) = run(true, &[&cl.as_bytes()[..cl.len() - 1]]);
    assert_eq!(evs2.len(), 4);
    assert!(matches!(err, Some(Error::Truncated { .. })));
    // Until close: ok at a line boundary, truncated inside a line.
    let uc = format!("HTTP/1.0 200 OK\r\n\r\n{body}");
    assert_eq!(run(true, &[uc.as_bytes()]), (evs.clone(), None));
    let (_, err) = run(true, &[&uc.as_bytes()[..uc.len() - 10]]);
    assert!(matches!(err, Some(Error::Truncated { .. })));
}

#[test]
fn final_line_without_newline_in_a_complete_body_counts() {
    let body = pods::event_line("ADDED", &pods::pod(1));
    let body = body.trim_end();
    let cl = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    let (evs, err) = run(true, &[cl.as_bytes()]);
    assert_eq!((evs.len(), err), (1, None));
}

#[test]
fn truncation_at_finish() {
    let (_, resp) = small_stream();
    let head_end = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    for (cut, what) in [(10, "head"), (head_end + 2, "chunk size"), (head_end + 100, "chunk"), (resp.len() - 3, "last chunk")] {
        let (_, err) = run(true, &[&resp[..cut]]);
        assert!(matches!(err, Some(Error::Truncated { .. })), "{what}: {err:?}");
    }
    // No last chunk, stopped between chunks: the body did not end.
    let (lines, _) = small_stream();
    let open = pods::chunked_response(&lines, false);
    assert!(matches!(run(true, &[&open]).1, Some(Error::Truncated { .. })));
    // Body-only: inside a line.
    let body = lines.concat();
    assert!(matches!(run(false, &[&body.as_bytes()[..body.len() - 5]]).1, Some(Error::Truncated { .. })));
}

#[test]
fn error_event_is_an_api_error_after_the_events_before_it() {
    let status = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1 (2)","reason":"Expired","code":410}"#;
    let body = pods::event_line("ADDED", &pods::pod(1)) + &pods::event_line("ERROR", status) + &pods::event_line("ADDED", &pods::pod(2));
    let mut d = Decoder::new(DecoderOptions { http: false, ..Default::default() });
    let mut out = Vec::new();
    let err = d.feed(body.as_bytes(), &mut out).unwrap_err();
    assert_eq!(out.len(), 1);
    let Error::Api(st) = &err else { panic!("{err:?}") };
    assert_eq!((st.code, st.reason.as_str()), (410, "Expired"));
    assert_eq!(st.message, "too old resource version: 1 (2)");
    assert_eq!(st.raw, status.as_bytes());
    // Poisoned: the same error again, and no more events.
    assert_eq!(d.feed(b"", &mut out).unwrap_err(), err);
    assert_eq!(d.finish().unwrap_err(), err);
    assert_eq!(out.len(), 1);
    // `object` before `type` works too.
    let swapped = format!("{{\"object\":{status},\"type\":\"ERROR\"}}\n");
    let (_, e) = run(false, &[swapped.as_bytes()]);
    assert_eq!(e, Some(err));
}

#[test]
fn non_2xx_response_becomes_its_status() {
    let status = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods is forbidden","reason":"Forbidden","code":403}"#;
    let resp = format!("HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{status}", status.len());
    for cut in 0..resp.len() {
        let (evs, err) = run(true, &[&resp.as_bytes()[..cut], &resp.as_bytes()[cut..]]);
        assert!(evs.is_empty());
        let Some(Error::Api(st)) = err else { panic!("cut {cut}: {err:?}") };
        assert_eq!((st.code, st.reason.as_str(), st.raw.as_slice()), (403, "Forbidden", status.as_bytes()));
    }
    // Chunked, and raised as soon as the body is complete (before finish()).
    let resp = pods::chunked_response(&[status.to_string()], true);
    let resp = String::from_utf8(resp).unwrap().replace("200 OK", "410 Gone");
    let mut d = Decoder::new(DecoderOptions::default());
    assert!(matches!(d.feed(resp.as_bytes(), &mut Vec::new()), Err(Error::Api(Status { code: 403, .. }))));
    // Not JSON: a Status from the HTTP code and the text; at finish for an until-close body.
    let (_, err) = run(true, &[b"HTTP/1.1 503 Service Unavailable\r\n\r\nupstream connect error\n"]);
    let Some(Error::Api(st)) = err else { panic!("{err:?}") };
    assert_eq!((st.code, st.message.as_str(), st.reason.as_str()), (503, "upstream connect error", "ServiceUnavailable"));
    let big = format!("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5000\r\n\r\n{}", "x".repeat(5000));
    let Some(Error::Api(st)) = run(true, &[big.as_bytes()]).1 else { panic!() };
    assert!(st.message.len() <= 1024 && st.code == 500);
}
use kfast_native::error::Status;

#[test]
fn malformed_lines_report_their_body_offset() {
    let good = pods::event_line("ADDED", &pods::pod(3));
    for bad in [
        "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"x\"}}\n", // missing brace
        "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"x\"}}}}\n", // extra
        "{\"type\":\"ADDED\"}\n",
        "{\"object\":{}}\n",
        "{\"type\":\"SOMETHING\",\"object\":{}}\n",
        "{\"type\":\"ADDED\",\"object\":null}\n",
        "[1,2]\n",
        "not json\n",
        "{\"type\":\"ADDED\",\"object\":{\"a\":\"\u{1}\"}}\n",
    ] {
        let body = format!("{good}\n{bad}{good}");
        let (evs, err) = run(false, &[body.as_bytes()]);
        assert_eq!(evs.len(), 1, "{bad}");
        match err {
            Some(Error::Decode { offset, .. }) => assert_eq!(offset as usize, good.len() + 1, "{bad}"),
            other => panic!("{bad}: {other:?}"),
        }
        // Through chunked framing the offset is still in the de-chunked body.
        let resp = pods::chunked_response(&[good.clone(), "\n".into(), bad.to_string()], true);
        let Some(Error::Decode { offset, .. }) = run(true, &[&resp]).1 else { panic!() };
        assert_eq!(offset as usize, good.len() + 1);
    }
}

#[test]
fn invalid_utf8_split_across_feeds_is_rejected_and_valid_split_accepted() {
    let line = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"\u{1F680}\"}}}\n".as_bytes().to_vec();
    let at = line.iter().position(|&b| b >= 0x80).unwrap() + 2;
    let (evs, err) = run(false, &[&line[..at], &line[at..]]);
    assert_eq!((evs.len(), err), (1, None));
    assert_eq!(evs[0].2, "\u{1F680}");
    let mut bad = line.clone();
    bad[at] = b'A';
    assert!(matches!(run(false, &[&bad]).1, Some(Error::Decode { .. })));
}

#[test]
fn multi_mib_lines_and_the_limit() {
    let big = format!(r#"{{"metadata":{{"name":"big","namespace":"ns","annotations":{{"blob":"{}"}}}},"data":{{"k":"v"}}}}"#, "ab".repeat(3 << 20));
    let line = pods::event_line("ADDED", &big);
    let resp = pods::chunked_response(std::slice::from_ref(&line), true);
    let pieces: Vec<&[u8]> = resp.chunks(4096).collect();
    let (evs, err) = run(true, &pieces);
    assert!(err.is_none());
    assert_eq!(evs[0].3.len(), big.len());
    // Over the limit: LineTooLong at the line's offset, raised before the newline arrives.
    let body = format!("\n\n{}", line);
    let mut d = Decoder::new(DecoderOptions { http: false, max_line_bytes: 1 << 20 });
    let mut out = Vec::new();
    let mut err = None;
    for p in body.as_bytes()[..body.len() / 2].chunks(65536) {
        if let Err(e) = d.feed(p, &mut out) {
            err = Some(e);
            break;
        }
    }
    assert_eq!(err, Some(Error::LineTooLong { offset: 2, limit: 1 << 20 }));
    // Exactly at the limit is fine.
    let mut d = Decoder::new(DecoderOptions { http: false, max_line_bytes: line.len() - 1 });
    d.feed(line.as_bytes(), &mut out).unwrap();
}

#[test]
fn bad_framing_is_a_decode_error() {
    for resp in [
        &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"[..],
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX\r\n",
        b"SMTP ready\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n",
    ] {
        assert!(matches!(run(true, &[resp]).1, Some(Error::Decode { .. })), "{}", String::from_utf8_lossy(resp));
    }
}

#[test]
fn a_newline_is_never_whitespace_inside_an_event() {
    // NDJSON: the '\n' ends the line, so this is two malformed lines, not one event.
    let body = b"{\"type\":\"ADDED\",\n\"object\":{\"metadata\":{}}}\n";
    for parts in [vec![&body[..]], body.chunks(1).collect::<Vec<_>>()] {
        let (evs, err) = run(false, &parts);
        assert!(evs.is_empty());
        assert!(matches!(err, Some(Error::Decode { offset: 0, .. })), "{err:?}");
    }
    // Spaces and a CR before the newline are fine; so is leading whitespace.
    let body = b"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}} \t\r\n  {\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"b\"}}}\n";
    let (evs, err) = run(false, &[&body[..]]);
    assert_eq!((evs.len(), err), (2, None));
}

#[test]
fn a_watch_object_without_a_name_is_a_decode_error() {
    // Its cache key would be "ns/" and collide with every other nameless object.
    let good = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"namespace\":\"n\"}}}\n";
    for bad in ["{\"metadata\":{\"namespace\":\"n\"}}", "{\"metadata\":{\"name\":\"\"}}", "{}"] {
        let body = format!("{good}{{\"type\":\"MODIFIED\",\"object\":{bad}}}\n");
        let (evs, err) = run(false, &[body.as_bytes()]);
        assert_eq!(evs.len(), 1, "{bad}");
        assert!(matches!(&err, Some(Error::Decode { offset, message }) if *offset == good.len() as u64 && message.contains("metadata.name")), "{err:?}");
    }
}

#[test]
fn body_offset_counts_consumed_lines_even_after_an_error() {
    let good = pods::event_line("ADDED", &pods::pod(1));
    let body = format!("{good}{good}{{bad}}\n{good}");
    let mut d = Decoder::new(DecoderOptions { http: false, ..Default::default() });
    let mut out = Vec::new();
    assert!(d.feed(body.as_bytes(), &mut out).is_err());
    assert_eq!(out.len(), 2);
    assert_eq!(d.body_offset() as usize, 2 * good.len() + "{bad}\n".len());
}

#[test]
fn feed_after_finish_is_an_error() {
    let (_, resp) = small_stream();
    for (http, input) in [(true, resp.clone()), (false, small_stream().0.concat().into_bytes())] {
        let mut d = Decoder::new(DecoderOptions { http, ..Default::default() });
        let mut out = Vec::new();
        d.feed(&input, &mut out).unwrap();
        d.finish().unwrap();
        d.finish().unwrap(); // finishing twice gives the same outcome
        let before = out.len();
        assert_eq!(d.feed(b"", &mut out), Err(Error::FeedAfterFinish));
        assert_eq!(d.feed(b"{\"type\":\"ADDED\"}\n", &mut out), Err(Error::FeedAfterFinish));
        assert_eq!(out.len(), before, "nothing decoded after finish");
    }
    // Also after a finish that failed: the stream is over either way.
    let mut d = Decoder::new(DecoderOptions { http: false, ..Default::default() });
    let mut out = Vec::new();
    d.feed(b"{\"type\":\"ADD", &mut out).unwrap();
    assert!(matches!(d.finish(), Err(Error::Truncated { .. })));
    assert_eq!(d.feed(b"ED\"}\n", &mut out), Err(Error::FeedAfterFinish));
}
