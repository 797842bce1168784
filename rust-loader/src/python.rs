//! The Python surface (`harmonynet_jax._rust`): thin conversions, no logic. Every loader error
//! becomes a Python exception with the loader's message; no panic crosses the boundary.

use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArray3, PyReadonlyArray2};
use pyo3::exceptions::{PyFileNotFoundError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use numpy::ndarray::Array3;

use crate::audio::decode_uncached;
use crate::dataset::Split;
use crate::error::LoaderError;
use crate::midi::{apply_pedal, read_midi};
use crate::performance::{Note, Pedal};
use crate::segment::SegmentSpec;
use crate::stream::{Batch, Dataset, Mode, Stream, StreamConfig};
use crate::vocab;

/// Notes [N, 4] and pedal spans [M, 2] as numpy arrays.
type NotesAndPedals<'py> = (Bound<'py, PyArray2<f64>>, Bound<'py, PyArray2<f64>>);

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

pub(crate) fn pedals_to_array<'py>(py: Python<'py>, pedals: &[Pedal]) -> Bound<'py, PyArray2<f64>> {
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
        .map(|i| {
            vocab::Token::from_id(i)
                .map(|t| t.name())
                .unwrap_or_default()
        })
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
) -> PyResult<NotesAndPedals<'py>> {
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
    m.add_function(wrap_pyfunction!(read_midi_file, m)?)?;
    m.add_function(wrap_pyfunction!(sustain_extend, m)?)?;
    m.add_function(wrap_pyfunction!(decode_audio, m)?)?;
    m.add_class::<PyStream>()?;
    Ok(())
}

/// Notes [N, 4] and pedal spans [M, 2] of a MIDI file, in seconds.
#[pyfunction]
fn read_midi_file<'py>(py: Python<'py>, path: PathBuf) -> PyResult<NotesAndPedals<'py>> {
    let perf = py.detach(|| read_midi(&path)).map_err(to_py_err)?;
    Ok((
        notes_to_array(py, &perf.notes),
        pedals_to_array(py, &perf.pedals),
    ))
}

/// The standard sustain extension of notes [N, 4] by pedal spans [M, 2] (for metrics).
#[pyfunction]
fn sustain_extend<'py>(
    py: Python<'py>,
    notes: PyReadonlyArray2<'py, f64>,
    pedals: PyReadonlyArray2<'py, f64>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let notes = notes_from_array(&notes)?;
    let pedals = pedals_from_array(&pedals)?;
    Ok(notes_to_array(py, &apply_pedal(&notes, &pedals)))
}

/// Any audio file ffmpeg reads, as f32 mono 16 kHz (the decoder training also uses).
#[pyfunction]
#[pyo3(signature = (path, ffmpeg, timeout_seconds=600.0))]
fn decode_audio(
    py: Python<'_>,
    path: PathBuf,
    ffmpeg: PathBuf,
    timeout_seconds: f64,
) -> PyResult<Bound<'_, PyArray1<f32>>> {
    let timeout = std::time::Duration::from_secs_f64(timeout_seconds.max(0.001));
    let samples = py
        .detach(|| decode_uncached(&ffmpeg, &path, timeout))
        .map_err(to_py_err)?;
    Ok(samples.into_pyarray(py))
}

fn array3(
    py: Python<'_>,
    data: Vec<f32>,
    shape: (usize, usize, usize),
) -> PyResult<Bound<'_, PyArray3<f32>>> {
    Array3::from_shape_vec(shape, data)
        .map(|a| a.into_pyarray(py))
        .map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

fn array2<T: numpy::Element>(
    py: Python<'_>,
    data: Vec<T>,
    shape: (usize, usize),
) -> PyResult<Bound<'_, PyArray2<T>>> {
    Array2::from_shape_vec(shape, data)
        .map(|a| a.into_pyarray(py))
        .map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

fn batch_to_dict(py: Python<'_>, b: Batch) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    let keys = vocab::NUM_PITCHES as usize;
    d.set_item("audio", array2(py, b.audio, (b.size, b.samples))?)?;
    d.set_item("tokens", array2(py, b.tokens, (b.size, b.max_tokens))?)?;
    d.set_item(
        "token_mask",
        array2(py, b.token_mask, (b.size, b.max_tokens))?,
    )?;
    let shape3 = (b.size, b.frames, keys);
    d.set_item("onset", array3(py, b.onset, shape3)?)?;
    d.set_item("frame", array3(py, b.frame, shape3)?)?;
    d.set_item("offset", array3(py, b.offset, shape3)?)?;
    d.set_item("velocity", array3(py, b.velocity, shape3)?)?;
    d.set_item("pedal", array2(py, b.pedal, (b.size, b.frames))?)?;
    d.set_item("piece", b.piece.into_pyarray(py))?;
    d.set_item("start_sample", b.start_sample.into_pyarray(py))?;
    d.set_item("epoch", b.epoch)?;
    Ok(d)
}

/// The batch stream (see stream.rs); `harmonynet_jax.data.Stream` wraps it.
#[pyclass(name = "Stream", module = "harmonynet_jax._rust")]
struct PyStream {
    inner: Mutex<Stream>,
    dataset: Arc<Dataset>,
}

#[pymethods]
impl PyStream {
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (root, split, segment_samples, batch_size, seed, shard_index, shard_count,
        threads, prefetch, max_tokens, frame_hop, sequential, epochs, ffmpeg, cache_dir, position))]
    fn new(
        py: Python<'_>,
        root: PathBuf,
        split: &str,
        segment_samples: usize,
        batch_size: usize,
        seed: u64,
        shard_index: usize,
        shard_count: usize,
        threads: usize,
        prefetch: usize,
        max_tokens: usize,
        frame_hop: usize,
        sequential: bool,
        epochs: Option<u64>,
        ffmpeg: PathBuf,
        cache_dir: PathBuf,
        position: u64,
    ) -> PyResult<Self> {
        let split: Split = split.parse().map_err(PyValueError::new_err)?;
        let spec = SegmentSpec::new(segment_samples, frame_hop, max_tokens)
            .map_err(PyValueError::new_err)?;
        let cfg = StreamConfig {
            root,
            split,
            spec,
            batch_size,
            seed,
            shard_index,
            shard_count,
            threads,
            prefetch,
            mode: if sequential {
                Mode::Sequential
            } else {
                Mode::Random
            },
            epochs,
            ffmpeg,
            cache_dir,
        };
        let (stream, dataset) = py
            .detach(|| {
                let dataset = Arc::new(Dataset::open(
                    &cfg.root,
                    cfg.split,
                    &cfg.ffmpeg,
                    &cfg.cache_dir,
                )?);
                Stream::new(dataset.clone(), cfg, position).map(|s| (s, dataset))
            })
            .map_err(to_py_err)?;
        Ok(Self {
            inner: Mutex::new(stream),
            dataset,
        })
    }

    /// The next batch as a dict of numpy arrays, or None at the end of a finite stream.
    fn next_batch<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let result = py.detach(|| self.inner.lock().unwrap_or_else(|e| e.into_inner()).next());
        match result.map_err(to_py_err)? {
            Some(batch) => Ok(Some(batch_to_dict(py, batch)?)),
            None => Ok(None),
        }
    }

    #[getter]
    fn position(&self) -> u64 {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .position()
    }

    fn seek(&self, py: Python<'_>, position: u64) {
        py.detach(|| {
            self.inner
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .seek(position)
        })
    }

    fn batches_per_epoch(&self) -> u64 {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .batches_per_epoch()
    }

    fn num_pieces(&self) -> usize {
        self.dataset.len()
    }

    /// (composer, title, midi_filename, audio_filename, duration) of piece `index`.
    fn piece(&self, index: usize) -> PyResult<(String, String, String, String, f64)> {
        if index >= self.dataset.len() {
            return Err(PyValueError::new_err(format!("no piece {index}")));
        }
        let e = self.dataset.entry(index);
        Ok((
            e.composer.clone(),
            e.title.clone(),
            e.midi_filename.clone(),
            e.audio_filename.clone(),
            e.duration,
        ))
    }

    /// New warnings since the last call, and the running counts.
    fn take_report(&self) -> (Vec<String>, usize, usize) {
        let r = self.dataset.take_report();
        (r.warnings, r.skipped_files, r.truncated_segments)
    }

    fn close(&self, py: Python<'_>) {
        py.detach(|| self.inner.lock().unwrap_or_else(|e| e.into_inner()).close())
    }
}
