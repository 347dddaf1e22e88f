//! kfast's Rust hot path. The core modules (`decode`, `fifo`, `store`, `index`, `object`,
//! `error`) know nothing of Python; `py/` adapts them into the `kfast._native` extension.

pub mod delta;
pub mod error;
pub mod decode;
pub mod fifo;
pub mod index;
pub mod json_buf;
pub mod object;
pub mod process;
pub mod store;

#[cfg(feature = "python")]
mod py;

/// The decoder thread allocates every object and the processor thread frees the versions
/// it replaces; glibc then serialises both threads on the decoder's arena lock (profiled:
/// `__lll_lock_wait_private` under malloc/free on both threads). mimalloc frees
/// cross-thread without a shared lock.
#[cfg(feature = "python")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(feature = "python")]
#[pyo3::pymodule]
fn _native(m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
    py::register(m)
}

#[cfg(test)]
mod perf_tests;
