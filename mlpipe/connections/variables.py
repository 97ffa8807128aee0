"""Variable values: JSON text, where text that is not JSON is a JSON string.

``mlpipe variables set k 5`` stores the number 5, ``set k hello`` the string ``"hello"``;
``var.value.k`` gives text (a string as it is, anything else as its JSON), ``var.json.k``
the JSON value.
"""

from __future__ import annotations

import json
from typing import Any


def to_json_text(text: str) -> str:
    """``text`` if it is valid JSON, else ``text`` as a JSON string."""
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return json.dumps(text)
    return text


def dump_value(value: Any) -> str:
    """The stored text of a Python value (a ``str`` stays a string)."""
    return json.dumps(value)


def load_value(stored: str) -> Any:
    """The JSON value of stored text."""
    return json.loads(stored)


def value_text(stored: str) -> str:
    """What ``var.value`` shows: a string as it is, any other value as its stored JSON."""
    value = json.loads(stored)
    return value if isinstance(value, str) else stored
