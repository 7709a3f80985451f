"""Pictures of styles: a labelled contact sheet (one tile per style)."""
from __future__ import annotations

from typing import Callable, Sequence

import cv2
import numpy as np

from donkey_ros.style.networks import resize


def contact_sheet(tiles: Sequence[tuple[str, np.ndarray]], columns: int = 7,
                  pad: int = 6, label_height: int = 18) -> np.ndarray:
    """Lays out labelled HxWx3 uint8 RGB tiles (all the same size) on a white sheet."""
    if not tiles:
        raise ValueError('no tiles')
    th, tw = tiles[0][1].shape[:2]
    rows = -(-len(tiles) // columns)
    columns = min(columns, len(tiles))
    sheet = np.full((pad + rows * (th + label_height + pad), pad + columns * (tw + pad), 3), 255,
                    np.uint8)
    for n, (label, tile) in enumerate(tiles):
        r, c = divmod(n, columns)
        x, y = pad + c * (tw + pad), pad + r * (th + label_height + pad)
        cv2.putText(sheet, label, (x + 2, y + label_height - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (0, 0, 0), 1, cv2.LINE_AA)
        sheet[y + label_height:y + label_height + th, x:x + tw] = tile
    return sheet


def style_sheet(stylize: Callable[[np.ndarray, str], np.ndarray], image: np.ndarray,
                styles: Sequence[str], columns: int = 7,
                progress: Callable[[str], None] | None = None) -> np.ndarray:
    """The input and each style applied to it (``stylize(image, style)``), as a contact sheet."""
    tiles = []
    for style in styles:
        if progress:
            progress(style)
        tiles.append((style, stylize(image, style)))
    h, w = tiles[0][1].shape[:2] if tiles else image.shape[:2]
    return contact_sheet([('original', resize(image, w, h))] + tiles, columns)

