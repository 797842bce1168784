//! HarmonyNet-JAX data loader: MAESTRO-layout index, ffmpeg audio, MIDI, the token vocabulary,
//! segments and the threaded batch stream. The Python module is built with `--features python`.

pub mod audio;
pub mod dataset;
pub mod error;
pub mod midi;
pub mod performance;
pub mod segment;
pub mod stream;
pub mod vocab;

#[cfg(feature = "python")]
mod python;
