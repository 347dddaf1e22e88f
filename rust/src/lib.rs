//! kfast's Rust hot path. The core modules (`decode`, `fifo`, `store`, `index`, `object`,
//! `error`) know nothing of Python; `py/` adapts them into the `kfast._native` extension.

pub mod delta;
pub mod error;
pub mod decode;
pub mod fifo;
pub mod index;
pub mod json_buf;
pub mod list_response;
pub mod object;
pub mod process;
pub mod pump;
pub mod store;
pub mod transform;

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
extern "C" {
    /// mimalloc's option setter (the C library the `mimalloc` crate links).
    fn mi_option_set(option: std::os::raw::c_int, value: std::os::raw::c_long);
    /// Free what the calling thread's heap holds empty (and, forced, abandoned segments).
    fn mi_collect(force: bool);
}

/// Hand memory the extension's allocator keeps free back to the OS (see `_native.pyi`).
#[cfg(feature = "python")]
#[pyo3::pyfunction]
fn release_free_memory(py: pyo3::Python<'_>) {
    // SAFETY: mi_collect may be called from any thread at any time.
    py.allow_threads(|| unsafe { mi_collect(true) });
}

#[cfg(feature = "python")]
#[pyo3::pymodule]
fn _native(m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
    // `mi_option_arena_eager_commit` (4 in mimalloc v3's `mi_option_e`): eagerly committed
    // arenas kept ~10 MB more RSS after a watch burst (bench_watch's informer memory
    // column: 27 MB vs 16 MB with glibc); not committing eagerly measured the same as glibc.
    // SAFETY: a plain option store; valid at any time.
    unsafe { mi_option_set(4, 0) };
    pyo3::types::PyModuleMethods::add_function(m, pyo3::wrap_pyfunction!(release_free_memory, m)?)?;
    py::register(m)
}

#[cfg(test)]
mod perf_tests;
