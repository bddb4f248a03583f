"""Strings from the audited system made safe for where they are shown.

Repository and tag names, headers, error bodies, certificate subjects and config values come from
a system that may be hostile. `visible(text)` replaces every character a terminal or an XML/
Markdown reader would act on (C0 and C1 controls, DEL, bidirectional overrides and isolates) by
its escaped form (`\\x1b`, `\\u202e`), so an ANSI/OSC escape sequence is shown as text and never
interpreted, a forged newline cannot start a fake result line, and the result stays valid XML 1.0.
Tabs survive; `keep_newlines=True` keeps \\n for multi-line blocks. Pure: no I/O.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_UNSAFE_NL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: object, *, keep_newlines: bool = False) -> str:
    """`text` with every control or bidi-override character escaped (see the module docstring)."""
    return (_UNSAFE if keep_newlines else _UNSAFE_NL).sub(_escape, str(text))
