//! The Python surface (`harmonynet_jax._rust`): thin conversions, no logic. Every loader error
//! becomes a Python exception with the loader's message; no panic crosses the boundary.

use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray2};
use pyo3::exceptions::{PyFileNotFoundError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::error::LoaderError;
use crate::performance::{Note, Pedal};
use crate::vocab;

pyo3::create_exception!(_rust, LoaderException, PyRuntimeError);

fn to_py_err(err: LoaderError) -> PyErr {
    match err {
        LoaderError::NotFound(_) => PyFileNotFoundError::new_err(err.to_string()),
        LoaderError::InvalidArgument(_) => PyValueError::new_err(err.to_string()),
        other => LoaderException::new_err(other.to_string()),
    }
}

fn notes_from_array(notes: &PyReadonlyArray2<'_, f64>) -> PyResult<Vec<Note>> {
    let view = notes.as_array();
    if view.ncols() != 4 && view.nrows() > 0 {
        return Err(PyValueError::new_err(
            "notes must have shape [N, 4]: onset, offset, pitch, velocity",
        ));
    }
    Ok(view
        .rows()
        .into_iter()
        .map(|r| Note {
            onset: r[0],
            offset: r[1],
            pitch: r[2].clamp(0.0, 127.0) as u8,
            velocity: r[3].clamp(0.0, 127.0) as u8,
        })
        .collect())
}

fn pedals_from_array(pedals: &PyReadonlyArray2<'_, f64>) -> PyResult<Vec<Pedal>> {
    let view = pedals.as_array();
    if view.ncols() != 2 && view.nrows() > 0 {
        return Err(PyValueError::new_err(
            "pedals must have shape [M, 2]: onset, offset",
        ));
    }
    Ok(view
        .rows()
        .into_iter()
        .map(|r| Pedal {
            onset: r[0],
            offset: r[1],
        })
        .collect())
}

pub(crate) fn notes_to_array<'py>(py: Python<'py>, notes: &[Note]) -> Bound<'py, PyArray2<f64>> {
    let mut out = Array2::<f64>::zeros((notes.len(), 4));
    for (i, n) in notes.iter().enumerate() {
        out[[i, 0]] = n.onset;
        out[[i, 1]] = n.offset;
        out[[i, 2]] = n.pitch as f64;
        out[[i, 3]] = n.velocity as f64;
    }
    out.into_pyarray(py)
}

pub(crate) fn pedals_to_array<'py>(
    py: Python<'py>,
    pedals: &[Pedal],
) -> Bound<'py, PyArray2<f64>> {
    let mut out = Array2::<f64>::zeros((pedals.len(), 2));
    for (i, p) in pedals.iter().enumerate() {
        out[[i, 0]] = p.onset;
        out[[i, 1]] = p.offset;
    }
    out.into_pyarray(py)
}

/// Every constant of the vocabulary, for `harmonynet_jax.tokens.VOCAB`.
#[pyfunction]
fn vocab_spec(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("pad", vocab::PAD)?;
    d.set_item("sos", vocab::SOS)?;
    d.set_item("eos", vocab::EOS)?;
    d.set_item("tie_end", vocab::TIE_END)?;
    d.set_item("pedal_on", vocab::PEDAL_ON)?;
    d.set_item("pedal_off", vocab::PEDAL_OFF)?;
    d.set_item("time_offset", vocab::TIME_OFFSET)?;
    d.set_item("num_time", vocab::MAX_SEGMENT_STEPS)?;
    d.set_item("velocity_offset", vocab::VELOCITY_OFFSET)?;
    d.set_item("num_velocity", vocab::NUM_VELOCITY_BINS + 1)?;
    d.set_item("note_offset", vocab::NOTE_OFFSET)?;
    d.set_item("min_pitch", vocab::MIN_PITCH)?;
    d.set_item("num_pitches", vocab::NUM_PITCHES)?;
    d.set_item("size", vocab::VOCAB_SIZE)?;
    d.set_item("sample_rate", vocab::SAMPLE_RATE)?;
    d.set_item("steps_per_second", vocab::STEPS_PER_SECOND)?;
    d.set_item("samples_per_step", vocab::SAMPLES_PER_STEP)?;
    let bins: Vec<u32> = (0..=vocab::NUM_VELOCITY_BINS)
        .map(|b| vocab::bin_to_velocity(b) as u32)
        .collect();
    d.set_item("bin_velocity", bins)?;
    let names: Vec<String> = (0..vocab::VOCAB_SIZE)
        .map(|i| vocab::Token::from_id(i).map(|t| t.name()).unwrap_or_default())
        .collect();
    d.set_item("names", names)?;
    Ok(d)
}

/// Tokens of one segment: notes [N, 4] (onset s, offset s, pitch, velocity), pedals [M, 2].
#[pyfunction]
fn encode<'py>(
    py: Python<'py>,
    notes: PyReadonlyArray2<'py, f64>,
    pedals: PyReadonlyArray2<'py, f64>,
    start: f64,
    steps: u32,
) -> PyResult<Bound<'py, PyArray1<i32>>> {
    if steps == 0 || steps > vocab::MAX_SEGMENT_STEPS {
        return Err(PyValueError::new_err(format!(
            "steps must be in 1..={}, got {steps}",
            vocab::MAX_SEGMENT_STEPS
        )));
    }
    let notes = notes_from_array(&notes)?;
    let pedals = pedals_from_array(&pedals)?;
    Ok(vocab::encode(&notes, &pedals, start, steps).into_pyarray(py))
}

/// The canonical grid form of a performance, in seconds (see docs/tokens.md).
#[pyfunction]
fn normalize<'py>(
    py: Python<'py>,
    notes: PyReadonlyArray2<'py, f64>,
    pedals: PyReadonlyArray2<'py, f64>,
) -> PyResult<(Bound<'py, PyArray2<f64>>, Bound<'py, PyArray2<f64>>)> {
    let notes = notes_from_array(&notes)?;
    let pedals = pedals_from_array(&pedals)?;
    let (grid_notes, grid_pedals) = vocab::normalize(&notes, &pedals);
    let step = 1.0 / vocab::STEPS_PER_SECOND as f64;
    let notes: Vec<Note> = grid_notes
        .iter()
        .map(|n| Note {
            onset: n.onset as f64 * step,
            offset: n.offset as f64 * step,
            pitch: n.pitch,
            velocity: vocab::bin_to_velocity(vocab::velocity_to_bin(n.velocity)),
        })
        .collect();
    let pedals: Vec<Pedal> = grid_pedals
        .iter()
        .map(|p| Pedal {
            onset: p.onset as f64 * step,
            offset: p.offset as f64 * step,
        })
        .collect();
    Ok((notes_to_array(py, &notes), pedals_to_array(py, &pedals)))
}

#[pymodule]
fn _rust(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("LoaderError", m.py().get_type::<LoaderException>())?;
    m.add_function(wrap_pyfunction!(vocab_spec, m)?)?;
    m.add_function(wrap_pyfunction!(encode, m)?)?;
    m.add_function(wrap_pyfunction!(normalize, m)?)?;
    let _ = to_py_err;
    Ok(())
}
