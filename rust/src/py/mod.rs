//! PyO3 adapters for the core. Everything Python lives here and in lib.rs.

pub mod decode;
pub mod error;
pub mod fifo;
pub mod list;
pub mod object;
pub mod pump;
pub mod store;
pub mod transform;

use pyo3::prelude::*;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    object::register(m)?;
    decode::register(m)?;
    store::register(m)?;
    fifo::register(m)?;
    list::register(m)?;
    transform::register(m)?;
    pump::register(m)?;
    Ok(())
}
