//! kfast's Rust hot path. The core modules (`decode`, `fifo`, `store`, `index`, `object`,
//! `error`) know nothing of Python; `py/` adapts them into the `kfast._native` extension.

pub mod delta;
pub mod error;
pub mod decode;
pub mod fifo;
pub mod index;
pub mod object;
pub mod process;
pub mod store;

#[cfg(feature = "python")]
mod py;

#[cfg(feature = "python")]
#[pyo3::pymodule]
fn _native(m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
    py::register(m)
}

#[cfg(test)]
mod perf_tests;
