//! Throughput of `Decoder::feed` on a synthetic watch of ~4.5 KB pod events: chunked HTTP,
//! one chunk per event (as kube-apiserver flushes), fed in 1 MiB slices (one socket read).
//! Run: `cargo bench --bench decode` (env KFAST_BENCH_EVENTS, KFAST_BENCH_SECS).

#[path = "../rust/tests/support/pods.rs"]
mod pods;

use kfast_native::decode::{Decoder, DecoderOptions};
use kfast_native::transform::{Transform, LAST_APPLIED, MANAGED_FIELDS};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// CPU time of this thread in ns (Linux schedstat), so that a loaded machine (the bench
/// shares 2 cores with builds) measures work done rather than time waited for a core.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Decode `data` repeatedly for about `secs`; returns (MB/s, events/s) of the best run by
/// CPU time (wall time printed beside it).
fn measure(label: &str, data: &[u8], http: bool, slice: usize, secs: usize, recv: bool, tf: Option<&Arc<Transform>>) -> (f64, f64) {
    let mut best = Duration::MAX;
    let mut best_cpu = u64::MAX;
    let mut events = 0;
    let deadline = Instant::now() + Duration::from_secs(secs as u64);
    let mut runs = 0;
    while runs < 3 || Instant::now() < deadline {
        let mut d = Decoder::new(DecoderOptions { http, ..Default::default() });
        d.set_transform(tf.cloned());
        let mut out = Vec::with_capacity(1024);
        let mut n = 0;
        let mut recv_buf: Vec<u8> = Vec::with_capacity(slice);
        let t = Instant::now();
        let c = thread_cpu_ns();
        for piece in data.chunks(slice) {
            let piece = if recv {
                // As a socket read lands in a reused buffer (and the Python binding copies
                // a non-bytes buffer): the copy is timed too.
                recv_buf.clear();
                recv_buf.extend_from_slice(piece);
                &recv_buf[..]
            } else {
                piece
            };
            d.feed(piece, &mut out).expect("decode");
            n += out.len();
            out.clear(); // the consumer takes the events; dropping them is part of the cost
        }
        d.finish().expect("finish");
        best = best.min(t.elapsed());
        if let (Some(a), Some(b)) = (c, thread_cpu_ns()) {
            best_cpu = best_cpu.min(b - a);
        }
        events = n;
        runs += 1;
    }
    let wall = best.as_secs_f64();
    let s = if best_cpu == u64::MAX { wall } else { best_cpu as f64 / 1e9 };
    let (mbs, evs) = (data.len() as f64 / s / 1e6, events as f64 / s);
    println!(
        "{label:<38} {mbs:>6.0} MB/s {evs:>9.0} events/s per CPU-second (wall: {:>5.0} MB/s; {events} events, {:.1} MB, best of {runs})",
        data.len() as f64 / wall / 1e6,
        data.len() as f64 / 1e6
    );
    (mbs, evs)
}

fn main() {
    let n = env("KFAST_BENCH_EVENTS", 32_000);
    let secs = env("KFAST_BENCH_SECS", 3);
    let lines = pods::events(n);
    let resp = pods::chunked_response(&lines, true);
    let body = lines.concat().into_bytes();
    println!("synthetic watch: {n} events, mean line {} bytes", body.len() / n);
    // The stream (~140 MB) is far bigger than the caches, so each read is fetched from
    // memory by the decoder itself; the "recv" rows copy each read into a reused 1 MiB
    // buffer first, as the socket path does, which leaves it in cache (copy included).
    measure("http=true, chunked, 1 MiB feeds", &resp, true, 1 << 20, secs, false, None);
    measure("http=true, chunked, 1 MiB recv buffer", &resp, true, 1 << 20, secs, true, None);
    measure("http=true, chunked, 64 KiB feeds", &resp, true, 64 << 10, secs, false, None);
    measure("http=false, body only, 1 MiB feeds", &body, false, 1 << 20, secs, false, None);
    // Native transforms (MB/s of the stream as sent): cutting managedFields and the
    // last-applied annotation, and also a path under status (which walks whole objects).
    let meta = Arc::new(Transform::new([MANAGED_FIELDS, LAST_APPLIED]).expect("valid paths"));
    measure("+ drop managedFields, last-applied", &resp, true, 1 << 20, secs, false, Some(&meta));
    let deep = Arc::new(meta.combine(&Transform::new([["status", "conditions"]]).expect("valid path")));
    measure("+ ... and status.conditions", &resp, true, 1 << 20, secs, false, Some(&deep));
}
