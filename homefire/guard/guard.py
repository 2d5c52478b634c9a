"""The prompt guard: should this prompt reach the model? A fine-tuned MiniLM classifier, int8 ONNX.

The model (data/guard.onnx) gives label probabilities for each chunk of a prompt. A long
prompt is cut into overlapping chunks and each label's probability is the maximum over
chunks, so a harmful ask at the end of a long role-play is scored on its own. Per-label
thresholds were calibrated on a validation split at three strictness levels and ship in
data/guard.npz with the category centroids (see MODEL_CARD.md).
"""

from __future__ import annotations

import json
import time
import zipfile
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..config import GUARD_CHOICES
from ..errors import GuardError
from .encoder import Model
from .normalize import normalize

LABELS = ("benign", "harmful", "jailbreak")
BLOCKING = ("harmful", "jailbreak")
# The calibrated threshold sets, from the guard levels a user can choose (config.GUARD_CHOICES, "off" aside).
STRICTNESS = tuple(level for level in GUARD_CHOICES if level != "off")

_REASONS = {
    "harmful": "it reads as a request for help with something that could seriously hurt people",
    "jailbreak": "it reads as an attempt to override the assistant's own instructions",
}


def head_path() -> Path:
    return Path(str(resources.files("homefire.guard") / "data" / "guard.npz"))


@dataclass(frozen=True)
class Verdict:
    """The guard's decision on one prompt.

    label is the most likely of benign / harmful / jailbreak *as judged against the thresholds*;
    score is the model's probability for that label (for a long prompt, the highest over its
    chunks; for benign, the lowest); category is a finer topic for a blocked prompt ("" when
    allowed); reason is one sentence a user can read.
    """

    allowed: bool
    label: str
    score: float
    category: str
    latency_ms: float
    reason: str
    scores: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Head:
    """The calibration file: labels, thresholds per strictness, category centroids."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise GuardError(f"the guard's calibration file is missing: {path} (rebuild it with `make guard-model`)")
        try:
            with np.load(path, allow_pickle=False) as z:
                self.centroids = z["centroids"].astype(np.float32)
                meta = json.loads(str(z["meta"]))
            self.labels: list[str] = meta["labels"]
            self.thresholds: dict[str, dict[str, float]] = meta["thresholds"]
            self.categories: list[tuple[str, str]] = [tuple(c) for c in meta["categories"]]  # (label, name)
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:  # JSONDecodeError: ValueError
            raise GuardError(f"the guard's calibration file is damaged: {path} ({exc.__class__.__name__})") from None
        self.meta = meta
        if tuple(self.labels) != LABELS or len(self.categories) != len(self.centroids):
            raise GuardError(f"the guard's calibration file is damaged: {path} (labels or shapes do not match)")

    def category(self, emb: np.ndarray, label: str) -> str:
        """The nearest category centroid among those of this label, by cosine after removing what they share.

        The fine-tuned embeddings of one label sit close together (the centroids' cosines are ~0.98), so
        raw cosine picks almost at random; measured from the label's mean centroid, the topic shows."""
        rows = [i for i, (lab, _) in enumerate(self.categories) if lab == label]
        if not rows:
            return label
        cents = self.centroids[rows]
        mean = cents.mean(axis=0)
        cents = cents - mean
        vec = emb - mean
        sims = (cents @ vec) / (np.linalg.norm(cents, axis=1) * float(np.linalg.norm(vec)) + 1e-12)
        return self.categories[rows[int(np.argmax(sims))]][1]


class Guard:
    """Load once, then `check(text)` each prompt (a few ms for a short one on one thread).

    strictness picks one of the calibrated threshold sets: "relaxed" blocks least (fewest false
    blocks, more misses), "strict" most. thresholds, if given, overrides single labels, e.g.
    {"harmful": 0.9}. offset shifts every threshold (negative = stricter), clipped to [0.01, 0.999].
    """

    def __init__(
        self,
        strictness: str = "normal",
        *,
        thresholds: dict[str, float] | None = None,
        offset: float = 0.0,
        model_path: Path | None = None,
        head_file: Path | None = None,
        threads: int = 1,
        runtime: str | None = None,
    ) -> None:
        if strictness not in STRICTNESS:
            raise GuardError(f"unknown guard strictness {strictness!r}: use one of {', '.join(STRICTNESS)}")
        self.head = Head(Path(head_file) if head_file else head_path())
        self.model = Model(model_path, threads=threads, runtime=runtime)
        self.strictness = strictness
        base = dict(self.head.thresholds[strictness])
        for label, value in (thresholds or {}).items():
            if label not in BLOCKING:
                raise GuardError(f"unknown guard label {label!r}: thresholds apply to {', '.join(BLOCKING)}")
            base[label] = value
        self.thresholds = {k: float(min(max(v + offset, 0.01), 0.999)) for k, v in base.items()}

    def flag_fact(self, text: str) -> str | None:
        """ "jailbreak" when a fact to remember reads as a planted instruction, else None (memory's fact check).

        Only instructions are a risk there (recalled facts join the system prompt): a fact about the
        user's own family reads as "private information" to the guard and must stay usable."""
        verdict = self.check(text)
        return "jailbreak" if not verdict.allowed and verdict.label == "jailbreak" else None

    def scores(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Per-chunk probabilities and embeddings of the normalised text."""
        return self.model.score(normalize(text))

    def check(self, text: str) -> Verdict:
        start = time.perf_counter()
        clean = normalize(text)
        if not clean:
            return Verdict(True, "benign", 1.0, "", _ms(start), "empty prompt", {k: 0.0 for k in BLOCKING})
        probs, emb = self.model.score(clean)
        idx = {label: i for i, label in enumerate(self.head.labels)}
        peak = {label: float(probs[:, idx[label]].max()) for label in BLOCKING}
        # The label that clears its threshold by the widest margin (relative to the threshold) wins.
        over = {lab: peak[lab] / self.thresholds[lab] for lab in BLOCKING if peak[lab] >= self.thresholds[lab]}
        if not over:
            score = float(probs[:, idx["benign"]].min())
            return Verdict(True, "benign", round(score, 4), "", _ms(start), "no sign of harm", _rounded(peak))
        label = max(over, key=lambda lab: over[lab])
        chunk = int(np.argmax(probs[:, idx[label]]))
        category = self.head.category(emb[chunk], label)
        reason = f"Blocked because {_REASONS[label]} ({category})."
        return Verdict(False, label, round(peak[label], 4), category, _ms(start), reason, _rounded(peak))


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


def _rounded(d: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in d.items()}
