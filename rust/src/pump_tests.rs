//! The pump against its model: one `Decoder` fed read by read, each read's events pushed
//! into a FIFO at once (what `WatchDecoder.feed_fifo` does). Any stream, any read split and
//! any interleaving of `take` calls must leave the same FIFO, report the same progress and
//! the same first error.

use super::*;
use proptest::prelude::*;

const STATUS_410: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old","reason":"Expired","code":410}"#;

/// One line of the body.
#[derive(Debug, Clone)]
enum L {
    /// kind (0 added, 1 modified, 2 deleted), pod number, resourceVersion
    Ev(u8, u8, u32),
    Bookmark(u32, bool),
    Blank,
    Malformed,
    Error410,
}

fn line(l: &L) -> String {
    match l {
        L::Ev(k, p, rv) => {
            let kind = ["ADDED", "MODIFIED", "DELETED"][*k as usize % 3];
            format!(
                r#"{{"type":"{kind}","object":{{"kind":"Pod","metadata":{{"name":"p{p}","namespace":"ns","resourceVersion":"{rv}"}},"spec":{{"nodeName":"n{}"}}}}}}"#,
                p % 3
            ) + "\n"
        }
        L::Bookmark(rv, end) => {
            let ann = if *end { r#","annotations":{"k8s.io/initial-events-end":"true"}"# } else { "" };
            format!(r#"{{"type":"BOOKMARK","object":{{"metadata":{{"resourceVersion":"{rv}"{ann}}}}}}}"#) + "\n"
        }
        L::Blank => "\r\n".into(),
        L::Malformed => "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"x\"}}\n".into(),
        L::Error410 => format!("{{\"type\":\"ERROR\",\"object\":{STATUS_410}}}\n"),
    }
}

/// A chunked response: `body` cut into chunks at `cuts` (sorted positions), then the last
/// chunk unless `open`.
fn response(body: &[u8], cuts: &[usize], open: bool) -> Vec<u8> {
    let mut out = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let mut prev = 0;
    for &c in cuts.iter().chain([body.len()].iter()) {
        let c = c.clamp(prev, body.len());
        if c > prev {
            out.extend_from_slice(format!("{:x}\r\n", c - prev).as_bytes());
            out.extend_from_slice(&body[prev..c]);
            out.extend_from_slice(b"\r\n");
        }
        prev = c;
    }
    if !open {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    out
}

type FifoState = Vec<(String, Vec<(DeltaType, String)>)>;

fn fifo_state(f: &DeltaFifo) -> FifoState {
    f.list_keys()
        .iter()
        .map(|k| {
            let ds = f.get_by_key(k).unwrap_or_default();
            let ds = ds.iter().map(|d| (d.kind, d.object.object().map(|o| o.resource_version().into_owned()).unwrap_or_default())).collect();
            (k.to_string(), ds)
        })
        .collect()
}

/// The model: the sequential decoder, events pushed after each read.
fn model(parts: &[&[u8]]) -> (FifoState, Progress, Option<Error>) {
    let fifo = DeltaFifo::new(None);
    let mut d = Decoder::new(DecoderOptions::default());
    let mut p = Progress::default();
    let mut out = Vec::new();
    let mut err = None;
    for part in parts {
        let r = d.feed(part, &mut out);
        push_events(&fifo, &mut out, &mut p);
        if let Err(e) = r {
            err = Some(e);
            break;
        }
    }
    if err.is_none() {
        err = d.finish().err();
    }
    (fifo_state(&fifo), p, err)
}

/// The pump, with a `take` (waiting or not) after the reads `takes` says.
fn pumped(parts: &[&[u8]], takes: &[u8]) -> (FifoState, Progress, Option<Error>) {
    let fifo = Arc::new(DeltaFifo::new(None));
    let mut pump = WatchPump::new(DecoderOptions::default(), None).unwrap();
    let mut p = Progress::default();
    let mut err = None;
    for (i, part) in parts.iter().enumerate() {
        let mut buf = pump.buffer(part.len());
        buf.copy_from_slice(part);
        pump.feed(buf, &fifo, false);
        pump.check_invariants().unwrap();
        let t = takes.get(i).copied().unwrap_or(0) % 3;
        if t > 0 {
            let (got, e) = pump.take(t == 2);
            p.merge(got);
            if let Some(e) = e {
                err = Some(e);
                break;
            }
        }
    }
    if err.is_none() {
        let (got, e) = pump.finish();
        p.merge(got);
        err = e;
    }
    // Poisoned: the same error again, and nothing more arrives.
    let (again, e2) = pump.take(true);
    assert!(again.is_empty() && e2 == err, "{again:?} {e2:?} vs {err:?}");
    pump.close();
    (fifo_state(&fifo), p, err)
}

fn line_strategy() -> impl Strategy<Value = L> {
    prop_oneof![
        12 => (0u8..3, 0u8..6, 1u32..1000).prop_map(|(k, p, rv)| L::Ev(k, p, rv)),
        2 => (1u32..1000, any::<bool>()).prop_map(|(rv, e)| L::Bookmark(rv, e)),
        1 => Just(L::Blank),
        1 => Just(L::Malformed),
        1 => Just(L::Error410),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn pump_matches_the_sequential_decoder(
        lines in prop::collection::vec(line_strategy(), 0..25),
        chunk_cuts in prop::collection::vec(0usize..4000, 0..30),
        read_cuts in prop::collection::vec(0usize..6000, 0..12),
        takes in prop::collection::vec(any::<u8>(), 0..14),
        open in any::<bool>(),
        truncate in prop::option::of(0usize..6000),
    ) {
        let body: Vec<u8> = lines.iter().map(line).collect::<String>().into_bytes();
        let mut cuts = chunk_cuts;
        cuts.sort_unstable();
        let mut resp = response(&body, &cuts, open);
        if let Some(t) = truncate {
            resp.truncate(t.min(resp.len()));
        }
        let mut reads = read_cuts;
        reads.push(resp.len());
        reads.sort_unstable();
        let mut parts: Vec<&[u8]> = Vec::new();
        let mut prev = 0;
        for r in reads {
            let r = r.min(resp.len());
            if r > prev {
                parts.push(&resp[prev..r]);
                prev = r;
            }
        }
        let want = model(&parts);
        let got = pumped(&parts, &takes);
        prop_assert_eq!(got, want);
    }
}

#[test]
fn framing_error_comes_after_the_events_before_it() {
    let body = line(&L::Ev(0, 1, 5)) + &line(&L::Ev(0, 2, 6));
    let mut resp = response(body.as_bytes(), &[body.len() / 2], true);
    resp.extend_from_slice(b"zz\r\n"); // not a chunk size
    let (state, p, err) = pumped(&[&resp], &[]);
    assert_eq!(state.len(), 2);
    assert_eq!((p.events, p.last_rv.as_deref()), (2, Some("6")));
    assert!(matches!(err, Some(Error::Decode { .. })), "{err:?}");
}

#[test]
fn non_2xx_is_its_status_and_complete_ends_the_body() {
    let resp = format!("HTTP/1.1 410 Gone\r\nContent-Length: {}\r\n\r\n{STATUS_410}", STATUS_410.len());
    let fifo = Arc::new(DeltaFifo::new(None));
    let mut pump = WatchPump::new(DecoderOptions::default(), None).unwrap();
    let mut buf = pump.buffer(resp.len());
    buf.copy_from_slice(resp.as_bytes());
    pump.feed(buf, &fifo, false);
    assert_eq!(pump.status_code(), Some(410));
    assert!(pump.complete());
    let (p, err) = pump.take(false);
    assert!(p.is_empty());
    assert!(matches!(err, Some(Error::Api(Status { code: 410, .. }))), "{err:?}");

    // A complete 200 body: the final line without '\n' counts, as in `Decoder::feed`.
    let ev = line(&L::Ev(0, 1, 7));
    let ev = ev.trim_end();
    let resp = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{ev}", ev.len());
    let mut pump = WatchPump::new(DecoderOptions::default(), None).unwrap();
    let mut buf = pump.buffer(resp.len());
    buf.copy_from_slice(resp.as_bytes());
    pump.feed(buf, &fifo, false);
    assert!(pump.complete());
    let (p, err) = pump.take(true);
    assert_eq!((p.events, err), (1, None));
}

#[test]
fn close_drops_queued_work_and_joins() {
    let body: String = (0..2000).map(|i| line(&L::Ev(0, (i % 200) as u8, i))).collect();
    let resp = response(body.as_bytes(), &[], true);
    let fifo = Arc::new(DeltaFifo::new(None));
    let mut pump = WatchPump::new(DecoderOptions::default(), None).unwrap();
    for part in resp.chunks(4096) {
        let mut buf = pump.buffer(part.len());
        buf.copy_from_slice(part);
        pump.feed(buf, &fifo, false);
    }
    pump.close();
    let queued = fifo.len();
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(fifo.len(), queued, "nothing is pushed after close");
    // Closing twice (and dropping) is fine.
    pump.close();
}

use crate::error::Status;

#[test]
fn a_bounded_feed_waits_for_room_in_the_fifo_and_close_still_returns() {
    let n = 3 * MAX_QUEUED_DELTAS as u32;
    let body: String = (0..n).map(|i| line(&L::Ev(1, 0, i + 1)).replace("\"p0\"", &format!("\"p{i}\""))).collect();
    let resp = Arc::new(response(body.as_bytes(), &[], true));
    let fifo = Arc::new(DeltaFifo::new(None));
    // The reader blocks too once the worker holds MAX_IN_FLIGHT reads: feed from a thread.
    let feeder = {
        let (fifo, resp) = (fifo.clone(), resp.clone());
        std::thread::spawn(move || {
            let mut pump = WatchPump::new(DecoderOptions::default(), None).unwrap();
            for part in resp.chunks(64 * 1024) {
                let mut buf = pump.buffer(part.len());
                buf.copy_from_slice(part);
                pump.feed(buf, &fifo, true);
            }
            pump.take(true)
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(200));
    // No consumer yet: the worker stopped at the limit (plus at most one read's events).
    let held = fifo.deltas_len();
    assert!((MAX_QUEUED_DELTAS..MAX_QUEUED_DELTAS + 1000).contains(&held), "{held}");
    // A consumer makes room: everything arrives.
    let mut seen = 0;
    while seen < n as usize {
        match fifo.pop(Some(std::time::Duration::from_secs(5))) {
            Ok(p) => seen += p.deltas.len(),
            Err(e) => panic!("{e:?} after {seen}"),
        }
    }
    let (p, err) = feeder.join().unwrap();
    assert_eq!((p.events, err), (n as usize, None));
    // Stopped while waiting for room: close() returns promptly.
    let mut pump = WatchPump::new(DecoderOptions::default(), None).unwrap();
    let fifo = Arc::new(DeltaFifo::new(None));
    for part in resp.chunks(1 << 20).take(MAX_IN_FLIGHT - 1) {
        let mut buf = pump.buffer(part.len());
        buf.copy_from_slice(part);
        pump.feed(buf, &fifo, true);
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    let t = std::time::Instant::now();
    pump.close();
    assert!(t.elapsed() < std::time::Duration::from_secs(1));
}
