//! One error type for the loader; `lib.rs` maps each variant to a Python exception.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LoaderError {
    #[error("file not found: {0}")]
    NotFound(PathBuf),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("ffmpeg not found: set HARMONYNET_FFMPEG, put ffmpeg on PATH or `pip install imageio-ffmpeg`")]
    FfmpegMissing,
    #[error("cannot decode audio {path}: {message}")]
    Audio { path: PathBuf, message: String },
    #[error("invalid MIDI {path}: {message}")]
    Midi { path: PathBuf, message: String },
    #[error("invalid dataset index {path}: {message}")]
    Index { path: PathBuf, message: String },
    #[error("no usable data: {0}")]
    NoData(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

pub type Result<T> = std::result::Result<T, LoaderError>;
