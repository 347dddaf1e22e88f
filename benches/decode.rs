//! Throughput of `Decoder::feed` on a synthetic watch of ~4.5 KB pod events: chunked HTTP,
//! one chunk per event (as kube-apiserver flushes), fed in 1 MiB slices (one socket read).
//! Run: `cargo bench --bench decode` (env KFAST_BENCH_EVENTS, KFAST_BENCH_SECS).

#[path = "../rust/tests/support/pods.rs"]
mod pods;

use kfast_native::decode::{Decoder, DecoderOptions};
use std::time::{Duration, Instant};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Decode `data` repeatedly for about `secs`; returns (MB/s, events/s) of the best run.
fn measure(label: &str, data: &[u8], http: bool, slice: usize, secs: usize) -> (f64, f64) {
    let mut best = Duration::MAX;
    let mut events = 0;
    let deadline = Instant::now() + Duration::from_secs(secs as u64);
    let mut runs = 0;
    while runs < 3 || Instant::now() < deadline {
        let mut d = Decoder::new(DecoderOptions { http, ..Default::default() });
        let mut out = Vec::with_capacity(1024);
        let mut n = 0;
        let t = Instant::now();
        for piece in data.chunks(slice) {
            d.feed(piece, &mut out).expect("decode");
            n += out.len();
            out.clear(); // the consumer takes the events; dropping them is part of the cost
        }
        d.finish().expect("finish");
        best = best.min(t.elapsed());
        events = n;
        runs += 1;
    }
    let s = best.as_secs_f64();
    let (mbs, evs) = (data.len() as f64 / s / 1e6, events as f64 / s);
    println!("{label:<44} {mbs:>8.0} MB/s {evs:>11.0} events/s  ({events} events, {:.1} MB, best of {runs})", data.len() as f64 / 1e6);
    (mbs, evs)
}

fn main() {
    let n = env("KFAST_BENCH_EVENTS", 32_000);
    let secs = env("KFAST_BENCH_SECS", 3);
    let lines = pods::events(n);
    let resp = pods::chunked_response(&lines, true);
    let body = lines.concat().into_bytes();
    println!("synthetic watch: {n} events, mean line {} bytes", body.len() / n);
    measure("http=true, chunked, 1 MiB feeds", &resp, true, 1 << 20, secs);
    measure("http=true, chunked, 64 KiB feeds", &resp, true, 64 << 10, secs);
    measure("http=false, body only, 1 MiB feeds", &body, false, 1 << 20, secs);
}
