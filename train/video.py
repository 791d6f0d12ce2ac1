"""Rollout videos: text drawn on each frame (Pillow), H.264 mp4 through imageio-ffmpeg's ffmpeg.

Each frame carries the task's instruction (top band), the seed and step, and the episode's state
(bottom band: running, success, or failed with the success conditions that did not hold).
"""
from __future__ import annotations

import itertools
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
from PIL import Image, ImageDraw, ImageFont

WHITE, GREY, GREEN, RED = (255, 255, 255), (200, 200, 200), (90, 230, 110), (255, 95, 85)


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)  # Pillow's bundled font: no system fonts needed


@lru_cache(maxsize=64)
def _wrap(text: str, size: int, width: int) -> tuple[str, ...]:
    """``text`` broken at spaces into lines no wider than ``width`` pixels."""
    font, lines, line = _font(size), [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and font.getlength(trial) > width:
            lines.append(line)
            line = word
        else:
            line = trial
    return tuple(lines + [line]) if line else tuple(lines)


def annotate_frame(frame: np.ndarray, instruction: str, status: str, *, success: bool | None = None,
                   failed: list[str] | tuple[str, ...] = ()) -> np.ndarray:
    """``frame`` (H, W, 3) uint8 with text drawn on darkened bands (a new array).

    Top band: ``instruction``. Bottom band: ``status`` (e.g. "seed 100006  step 57/200") and the
    episode's state: "running" (``success`` None/False), "success" (True) or, when ``failed``
    names conditions, "failed: <conditions>" on a red band above it.
    """
    out = np.array(frame, dtype=np.uint8)  # a copy: the caller's frame stays as rendered
    h, w = out.shape[:2]
    size = max(11, round(h / 24))  # 15 px at 360 rows
    pad, line_h = size // 2, size + size // 4
    lines = _wrap(instruction, size, w - 2 * pad)
    top = pad + line_h * len(lines) + pad // 2
    bottom = line_h + pad
    fail_lines = _wrap("failed: " + ", ".join(failed), size, w - 2 * pad) if failed else ()
    fail_h = line_h * len(fail_lines) + pad if fail_lines else 0
    # darken the bands in numpy (cheaper than alpha-compositing an RGBA layer)
    out[:top] //= 3
    out[h - bottom - fail_h:] //= 3
    if fail_h:
        out[h - bottom - fail_h:h - bottom] = out[h - bottom - fail_h:h - bottom] // 2 + np.array((110, 0, 0), np.uint8)
    img = Image.fromarray(out)
    draw, font = ImageDraw.Draw(img), _font(size)
    for i, line in enumerate(lines):
        draw.text((pad, pad // 2 + i * line_h), line, fill=WHITE, font=font)
    y = h - bottom + pad // 3
    draw.text((pad, y), status, fill=GREY, font=font)
    state, colour = ("failed", RED) if failed else ("success", GREEN) if success else ("running", WHITE)
    draw.text((w - pad - font.getlength(state), y), state, fill=colour, font=font)
    for i, line in enumerate(fail_lines):
        draw.text((pad, h - bottom - fail_h + pad // 3 + i * line_h), line, fill=WHITE, font=font)
    return np.asarray(img)


def write_mp4(frames: Iterable[np.ndarray], path, fps: int = 20) -> Path:
    """``frames``: (H, W, 3) uint8 each, any iterable (a generator streams: no frame list in memory).
    H.264, yuv420p; odd sizes are padded to even."""
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError("write_mp4 needs at least one frame")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = first.shape[:2]
    pad = ((0, h % 2), (0, w % 2), (0, 0))
    with imageio.get_writer(path, fps=fps, codec="libx264", pixelformat="yuv420p", quality=7,
                            macro_block_size=1, ffmpeg_log_level="error") as writer:
        for f in itertools.chain([first], frames):
            writer.append_data(np.pad(f, pad) if any(p[1] for p in pad) else f)
    return path
