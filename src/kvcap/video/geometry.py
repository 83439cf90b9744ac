"""Frame geometry shared by the backends: decode size, rotation, centre crop.

`size=S` follows CLIP's preprocessing: the shortest side is resized to S (done inside the
decoder, which is 7-10 ms/frame cheaper than resizing afterwards) and the centre SxS is
cropped. Rotation (clockwise degrees a player applies) is applied after scaling; a 90/270
turn swaps width and height but not the shortest side, so the decode size is the same.
"""

from __future__ import annotations

import numpy as np


def decode_size(width: int, height: int, size: int | None) -> tuple[int, int]:
    """(W, H) to ask the decoder for: shortest side = `size`, aspect kept; native if None."""
    if size is None:
        return width, height
    if width <= height:
        return size, max(size, round(height * size / width))
    return max(size, round(width * size / height)), size


def normalise_rotation(degrees: float | int | None) -> int:
    """Clockwise display rotation snapped to 0/90/180/270."""
    if not degrees:
        return 0
    return int(round(float(degrees) / 90.0)) % 4 * 90


def display_size(width: int, height: int, rotation: int) -> tuple[int, int]:
    """(W, H) as a player shows the frame."""
    return (height, width) if rotation in (90, 270) else (width, height)


def finish_frame(image: np.ndarray, rotation: int, size: int | None) -> np.ndarray:
    """Rotate a decoded (H, W, 3) frame as a player would, then centre-crop to (size, size, 3)."""
    if rotation:
        image = np.rot90(image, k=-(rotation // 90))  # np.rot90 turns counter-clockwise
    if size is not None:
        h, w = image.shape[:2]
        top, left = (h - size) // 2, (w - size) // 2
        image = image[top:top + size, left:left + size]
    return np.ascontiguousarray(image)
