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
    from PIL import Image

__all__ = ["MAX_PIXELS", "RESIZE_MODES", "CorruptImageError", "decode_bytes", "decode_image",
           "to_chw"]

RESIZE_MODES = ("shorter_side", "stretch")
#: the default pixel cap: 64 megapixels (an 8000 x 8000 photo)
MAX_PIXELS = 64_000_000
_ADDRESS = re.compile(r"<[^<>]* at 0x[0-9a-fA-F]+>")
_ORIENTATION = 0x0112  # the EXIF orientation tag


def decode_bytes(data: bytes, size: tuple[int, int], grayscale: bool,
                 resize: str = "shorter_side", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """One encoded image as uint8 (C, H, W) of ``size`` (height, width).

    Raises:
        CorruptImageError: the bytes are not a decodable image, or it has more than
            ``max_pixels`` pixels (``path`` is ``"<bytes>"``).
    """
    return to_chw(decode_image(data, size, grayscale, resize, max_pixels))


def decode_image(data: bytes, size: tuple[int, int], grayscale: bool,
                 resize: str = "shorter_side", max_pixels: int = MAX_PIXELS) -> Image.Image:
    """One encoded image as a Pillow image of ``size`` (height, width), ``L`` or ``RGB``.

    The same pixels as :func:`decode_bytes` (which is this plus :func:`to_chw`); the
    preprocessing workers take per-band histograms of it in C (``Image.histogram``).

    Raises:
        CorruptImageError: as :func:`decode_bytes`.
    """
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
            img: Image.Image = opened
            # exif_transpose and convert copy the whole image even when they change nothing
            if opened.getexif().get(_ORIENTATION, 1) != 1:
                img = ImageOps.exif_transpose(img)
            if img.mode != mode:
                img = img.convert(mode)
            if resize == "stretch":
                return img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            return ImageOps.fit(img, (size[1], size[0]), Image.Resampling.BILINEAR)
    except CorruptImageError:
        raise
    except UnidentifiedImageError:
        raise CorruptImageError("<bytes>", "not a recognised image format") from None
    except Exception as exc:  # Pillow raises many types for damaged files (and bombs)
        raise CorruptImageError("<bytes>", _ADDRESS.sub(
            "<data>", f"{type(exc).__name__}: {exc}")) from None


def to_chw(img: Image.Image, out: np.ndarray | None = None) -> np.ndarray:
    """A decoded ``L``/``RGB`` image as uint8 (C, H, W), written into ``out`` if given.

    The bands are split by Pillow (a C loop) rather than by a numpy transpose of
    interleaved pixels, which is about twice as slow for uint8.
    """
    import numpy as np

    bands = img.split()
    if out is None:
        out = np.empty((len(bands), img.height, img.width), dtype=np.uint8)
    for channel, band in enumerate(bands):
        out[channel] = np.asarray(band, dtype=np.uint8)
    return out
