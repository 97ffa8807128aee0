"""Decoding one encoded image into uint8 CHW pixels, exactly as for training and serving.

``resize="shorter_side"`` (the default) keeps the aspect ratio: the image is scaled so it
covers the target, then center-cropped (a wide photo loses its left and right edges, never
its middle); ``"stretch"`` squashes the whole image to the target. Images with more than
``max_pixels`` pixels (declared in their header, checked before decoding) are refused like
corrupt files: a decompression bomb never gets decoded.
"""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING

from mlpipe.errors import CorruptImageError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["MAX_PIXELS", "RESIZE_MODES", "CorruptImageError", "decode_bytes"]

RESIZE_MODES = ("shorter_side", "stretch")
#: the default pixel cap: 64 megapixels (an 8000 x 8000 photo)
MAX_PIXELS = 64_000_000
_ADDRESS = re.compile(r"<[^<>]* at 0x[0-9a-fA-F]+>")


def decode_bytes(data: bytes, size: tuple[int, int], grayscale: bool,
                 resize: str = "shorter_side", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """One encoded image as uint8 (C, H, W) of ``size`` (height, width).

    Raises:
        CorruptImageError: the bytes are not a decodable image, or it has more than
            ``max_pixels`` pixels (``path`` is ``"<bytes>"``).
    """
    import numpy as np
    from PIL import Image, ImageOps, UnidentifiedImageError

    mode = "L" if grayscale else "RGB"
    try:
        with Image.open(io.BytesIO(data)) as opened:
            width, height = opened.size
            if width * height > max_pixels:
                raise CorruptImageError("<bytes>", f"{width}x{height} pixels is above the "
                                        f"limit of {max_pixels:,} pixels")
            # JPEG: let the decoder scale down by 1/2..1/8 while decoding (never below the
            # target size), 2-3x faster for small targets; other formats ignore it.
            opened.draft(mode, (size[1], size[0]))
            opened.load()
            img = ImageOps.exif_transpose(opened).convert(mode)
            if resize == "stretch":
                img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            else:
                img = ImageOps.fit(img, (size[1], size[0]), Image.Resampling.BILINEAR)
            pixels = np.asarray(img, dtype=np.uint8)
    except CorruptImageError:
        raise
    except UnidentifiedImageError:
        raise CorruptImageError("<bytes>", "not a recognised image format") from None
    except Exception as exc:  # Pillow raises many types for damaged files (and bombs)
        raise CorruptImageError("<bytes>", _ADDRESS.sub(
            "<data>", f"{type(exc).__name__}: {exc}")) from None
    pixels = pixels[None, :, :] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    return np.ascontiguousarray(pixels)
