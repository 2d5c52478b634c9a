"""Text clean-up before scoring: undo the tricks that hide words from a tokenizer.

Zero-width characters, compatibility forms (fullwidth letters, ligatures, mathematical
alphabets), homoglyphs from Cyrillic and Greek, control bytes from binary junk and runs of
whitespace are all folded away, so "kіll" with a Cyrillic i scores like "kill".
"""

from __future__ import annotations

import re
import unicodedata

# Letters that look like Latin ones in common fonts; NFKC leaves them alone because they are
# distinct letters, so they are the usual way to slip a word past a keyword or token match.
_CONFUSABLES = str.maketrans(
    {
        # Cyrillic
        "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
        "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ј": "j", "ԁ": "d", "ɡ": "g", "һ": "h",
        "ӏ": "l", "ԛ": "q", "ԝ": "w", "ь": "b",
        "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C",
        "Т": "T", "У": "Y", "Х": "X", "Ѕ": "S", "І": "I", "Ј": "J",
        # Greek
        "α": "a", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u",
        "χ": "x", "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M",
        "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
    }
)  # fmt: skip

_SPACES = re.compile(r"[ \t\u00a0]+")
_NEWLINES = re.compile(r"\n{3,}")
_EDGE_SPACES = re.compile(r" *\n *")


def normalize(text: str) -> str:
    """The text as the classifier should see it. Idempotent; never raises on any str."""
    # Lone surrogates (from a bad decode) cannot be encoded by the tokenizer: replace them.
    text = text.encode("utf-8", "replace").decode("utf-8")
    text = unicodedata.normalize("NFKC", text)
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat == "Cf":  # zero-width space/joiner, BOM, bidi overrides: invisible, drop them
            continue
        if cat == "Cc" and ch not in "\n\t":  # NUL and other control bytes from binary junk
            out.append(" ")
            continue
        out.append(ch)
    text = "".join(out).translate(_CONFUSABLES)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _SPACES.sub(" ", text)
    text = _EDGE_SPACES.sub("\n", text)
    return _NEWLINES.sub("\n\n", text).strip()
