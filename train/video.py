"""H.264 mp4 writing through imageio-ffmpeg's bundled ffmpeg (playable in browsers/players)."""
from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np


def write_mp4(frames: list[np.ndarray], path, fps: int = 20) -> Path:
    """``frames``: list of (H, W, 3) uint8. H.264, yuv420p; odd sizes are padded to even."""
    if not frames:
        raise ValueError("write_mp4 needs at least one frame")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    pad = ((0, h % 2), (0, w % 2), (0, 0))
    with imageio.get_writer(path, fps=fps, codec="libx264", pixelformat="yuv420p", quality=7,
                            macro_block_size=1, ffmpeg_log_level="error") as writer:
        for f in frames:
            writer.append_data(np.pad(f, pad) if any(p[1] for p in pad) else f)
    return path
