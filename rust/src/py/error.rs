//! The one place where core errors become Python exceptions. Every class lives in
//! `kfast.errors`; this module only looks them up and instantiates them.

use crate::error::{Error, Status};
use pyo3::prelude::*;
use pyo3::types::PyDict;

fn errors_module(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    py.import("kfast.errors")
}

/// The Status as a Python dict (parsed from its raw JSON; falls back to the three fields).
pub fn status_to_dict<'py>(py: Python<'py>, status: &Status) -> PyResult<Bound<'py, PyAny>> {
    if !status.raw.is_empty() {
        let msgspec_json = py.import("msgspec.json")?;
        let raw = pyo3::types::PyBytes::new(py, &status.raw);
        if let Ok(obj) = msgspec_json.call_method1("decode", (raw,)) {
            if obj.is_instance_of::<PyDict>() {
                return Ok(obj);
            }
        }
    }
    let d = PyDict::new(py);
    d.set_item("kind", "Status")?;
    d.set_item("apiVersion", "v1")?;
    d.set_item("status", "Failure")?;
    d.set_item("code", status.code)?;
    d.set_item("reason", &status.reason)?;
    d.set_item("message", &status.message)?;
    Ok(d.into_any())
}

pub fn to_pyerr(err: Error) -> PyErr {
    // Store errors map to the builtins the stub documents; an index function's own
    // exception is re-raised as it was.
    match &err {
        Error::IndexExists { .. } | Error::FeedAfterFinish | Error::InvalidTransform { .. } => {
            return pyo3::exceptions::PyValueError::new_err(err.to_string())
        }
        Error::IndexNotFound { name } => return pyo3::exceptions::PyKeyError::new_err(name.clone()),
        Error::IndexFunc { source, .. } => {
            if let Some(e) = source.0.downcast_ref::<PyErr>() {
                return Python::with_gil(|py| e.clone_ref(py));
            }
        }
        _ => {}
    }
    Python::with_gil(|py| match build(py, &err) {
        Ok(e) => e,
        Err(e) => e,
    })
}

fn build(py: Python<'_>, err: &Error) -> PyResult<PyErr> {
    let m = errors_module(py)?;
    let inst = match err {
        Error::Decode { offset, .. } => m.getattr("DecodeError")?.call1((err.to_string(), *offset))?,
        Error::LineTooLong { offset, .. } => m.getattr("LineTooLongError")?.call1((err.to_string(), *offset))?,
        Error::Truncated { .. } => m.getattr("StreamTruncated")?.call1((err.to_string(),))?,
        Error::Api(status) => {
            let d = status_to_dict(py, status)?;
            let kwargs = PyDict::new(py);
            kwargs.set_item("code", status.code)?;
            m.getattr("api_error_from_status")?.call((d,), Some(&kwargs))?
        }
        Error::IndexExists { .. }
        | Error::IndexNotFound { .. }
        | Error::IndexFunc { .. }
        | Error::FeedAfterFinish
        | Error::InvalidTransform { .. } => {
            m.getattr("KfastError")?.call1((err.to_string(),))?
        }
    };
    Ok(PyErr::from_value(inst))
}

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        to_pyerr(err)
    }
}
