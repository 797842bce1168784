"""Where ffmpeg comes from: $HARMONYNET_FFMPEG, else PATH, else the imageio-ffmpeg wheel."""

from __future__ import annotations

import functools
import os
import shutil


class FfmpegNotFound(RuntimeError):
    pass


@functools.cache
def ffmpeg_path() -> str:
    explicit = os.environ.get("HARMONYNET_FFMPEG")
    if explicit:
        if not os.path.isfile(explicit):
            raise FfmpegNotFound(f"HARMONYNET_FFMPEG points to a missing file: {explicit}")
        return explicit
    on_path = shutil.which("ffmpeg")
    if on_path:
        return on_path
    try:
        import imageio_ffmpeg
    except ImportError as exc:
        raise FfmpegNotFound(
            "ffmpeg not found: set HARMONYNET_FFMPEG, put ffmpeg on PATH or "
            "`pip install imageio-ffmpeg`"
        ) from exc
    return imageio_ffmpeg.get_ffmpeg_exe()
