"""Task log text to HTML: ANSI colours kept as CSS classes, everything else escaped.

Logs are masked when they are written (``runtime/log_capture``); the text is passed
through ``mlpipe.masking.redact`` once more here, so a secret this process knows is never
shown even in a log written before the secret was registered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from html import escape

from markupsafe import Markup

from mlpipe.masking import redact

#: any escape sequence: CSI (``ESC [ ... final``), OSC (``ESC ] ... BEL/ST``), or a 2-byte one
_ESCAPE = re.compile(r"\x1b(?:\[([0-9;:?]*)([@-~])|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_BASIC = ("black", "red", "green", "yellow", "blue", "magenta", "cyan", "white")


@dataclass(frozen=True, slots=True)
class _Style:
    fg: str | None = None  # a class suffix ("red", "bright-red") or "#rrggbb"
    bg: str | None = None
    bold: bool = False
    dim: bool = False
    italic: bool = False
    underline: bool = False

    def attributes(self) -> str:
        classes: list[str] = []
        styles: list[str] = []
        for prefix, colour in (("fg", self.fg), ("bg", self.bg)):
            if colour is None:
                continue
            if colour.startswith("#"):
                styles.append(f"{'color' if prefix == 'fg' else 'background-color'}:{colour}")
            else:
                classes.append(f"ansi-{prefix}-{colour}")
        classes += [f"ansi-{name}" for name in ("bold", "dim", "italic", "underline")
                    if getattr(self, name)]
        out = f' class="{" ".join(classes)}"' if classes else ""
        return out + (f' style="{";".join(styles)}"' if styles else "")


_PLAIN = _Style()


def ansi_to_html(text: str) -> Markup:
    """``text`` (a log) as safe HTML: SGR colours and weights as ``<span>``s, other escape
    sequences dropped, secrets masked."""
    text = redact(text)
    out: list[str] = []
    style = _PLAIN
    position = 0
    for match in _ESCAPE.finditer(text):
        _emit(out, text[position:match.start()], style)
        position = match.end()
        if match.group(2) == "m":
            style = _apply_sgr(style, match.group(1) or "0")
    _emit(out, text[position:], style)
    return Markup("".join(out))


def _emit(out: list[str], chunk: str, style: _Style) -> None:
    if not chunk:
        return
    safe = escape(chunk, quote=False)
    out.append(safe if style == _PLAIN else f"<span{style.attributes()}>{safe}</span>")


def _apply_sgr(style: _Style, params: str) -> _Style:
    codes = [int(p) if p.isdigit() else 0 for p in re.split(r"[;:]", params)]
    i = 0
    while i < len(codes):
        code = codes[i]
        if code == 0:
            style = _PLAIN
        elif code in (1, 2, 3, 4, 22, 23, 24):
            style = _flags(style, code)
        elif 30 <= code <= 37 or 90 <= code <= 97:
            style = replace(style, fg=_basic(code - 30 if code < 90 else code - 90, code >= 90))
        elif 40 <= code <= 47 or 100 <= code <= 107:
            style = replace(style, bg=_basic(code - 40 if code < 100 else code - 100,
                                             code >= 100))
        elif code == 39:
            style = replace(style, fg=None)
        elif code == 49:
            style = replace(style, bg=None)
        elif code in (38, 48):
            colour, used = _extended(codes[i + 1:])
            i += used
            if colour is not None:
                style = replace(style, fg=colour) if code == 38 else replace(style, bg=colour)
        i += 1
    return style


def _flags(style: _Style, code: int) -> _Style:
    """Bold (1), dim (2), italic (3), underline (4) on; 22, 23, 24 off again."""
    if code == 1:
        return replace(style, bold=True)
    if code == 2:
        return replace(style, dim=True)
    if code == 3:
        return replace(style, italic=True)
    if code == 4:
        return replace(style, underline=True)
    if code == 22:
        return replace(style, bold=False, dim=False)
    return replace(style, italic=False) if code == 23 else replace(style, underline=False)


def _basic(index: int, bright: bool) -> str:
    return ("bright-" if bright else "") + _BASIC[index]


def _extended(rest: list[int]) -> tuple[str | None, int]:
    """``38;5;n`` (256 colours) or ``38;2;r;g;b`` (true colour): the colour and codes used."""
    if len(rest) >= 2 and rest[0] == 5:
        return _palette(rest[1]), 2
    if len(rest) >= 4 and rest[0] == 2:
        r, g, b = (min(max(c, 0), 255) for c in rest[1:4])
        return f"#{r:02x}{g:02x}{b:02x}", 4
    return None, len(rest)


def _palette(n: int) -> str | None:
    if 0 <= n < 16:
        return _basic(n % 8, n >= 8)
    if 16 <= n < 232:
        n -= 16
        levels = [0, 95, 135, 175, 215, 255]
        r, g, b = levels[n // 36], levels[(n // 6) % 6], levels[n % 6]
        return f"#{r:02x}{g:02x}{b:02x}"
    if 232 <= n < 256:
        v = 8 + (n - 232) * 10
        return f"#{v:02x}{v:02x}{v:02x}"
    return None
