"""The prompt guard: should this prompt reach the model? A fine-tuned MiniLM classifier (int8 ONNX), and a
second stage for the prompts it is unsure of.

The model (data/guard.onnx) gives label probabilities for each chunk of a prompt. A long
prompt is cut into overlapping chunks and each label's probability is the maximum over
chunks, so a harmful ask at the end of a long role-play is scored on its own. Per-label
thresholds were calibrated on a validation split at three strictness levels and ship in
data/guard.npz with the category centroids (see MODEL_CARD.md).

Stage 1 decides alone when it is confident. A prompt in its uncertain band (allowed, but with
max(P(harmful), P(jailbreak)) at or above the band's low line; or blocked with that score below its
high line) is judged again by stage 2 (stage2.py: SmolLM2-135M's hidden states and an MLP head), whose
verdict is final, with one exception: stage 2 reads a long text's first and last windows only, so it
never clears a stage-1 block on a text it did not read whole. The band (one for every strictness) and
stage 2's thresholds per strictness (ordered like stage 1's, so a stricter level blocks everything a
looser one does) were chosen on the validation split and ship in data/stage2.npz. Stage 2 loads on the
first uncertain prompt ("lazy", the default), at start ("eager"), or never ("off": stage 1 alone);
$HOMEFIRE_GUARD_STAGE2 sets the default.
"""

from __future__ import annotations

import json
import os
import threading
import time
import zipfile
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..config import GUARD_CHOICES
from ..errors import GuardError
from . import stage2 as second
from .encoder import Model
from .normalize import normalize

LABELS = ("benign", "harmful", "jailbreak")
BLOCKING = ("harmful", "jailbreak")
# The calibrated threshold sets, from the guard levels a user can choose (config.GUARD_CHOICES, "off" aside).
STRICTNESS = tuple(level for level in GUARD_CHOICES if level != "off")
SECOND_STAGE = ("lazy", "eager", "off")
SELF_HARM = "self-harm"  # the category of asks about hurting oneself (assistant.SELF_HARM: a supportive reply)
DEFAULT_SECOND_STAGE = "lazy"

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
    score is the deciding stage's probability for that label (for a long prompt, the highest over
    its chunks; for benign, the lowest, or 1 - the highest harm score at stage 2); category is a
    finer topic for a blocked prompt ("" when allowed); reason is one sentence a user can read.
    stage is the stage that decided (1, or 2 for a prompt in stage 1's uncertain band); scores are
    stage 1's P(harmful) and P(jailbreak), stage2 stage 2's (None when it did not run).
    """

    allowed: bool
    label: str
    score: float
    category: str
    latency_ms: float
    reason: str
    scores: dict[str, float] = field(default_factory=dict)
    stage: int = 1
    stage2: dict[str, float] | None = None

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
    {"harmful": 0.9}, in both stages. offset shifts every threshold of both stages (negative = stricter),
    clipped to [0.01, 0.999]. second_stage is "lazy", "eager" or "off" (module docstring).
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
        second_stage: str | None = None,
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
        mode = second_stage or os.environ.get("HOMEFIRE_GUARD_STAGE2") or DEFAULT_SECOND_STAGE
        if mode not in SECOND_STAGE:
            raise GuardError(f"unknown guard second stage {mode!r}: use one of {', '.join(SECOND_STAGE)}")
        self.threads = threads
        self.second_stage = mode
        self._stage2: second.SecondStage | None = None
        self._stage2_lock = threading.Lock()
        self.band: dict[str, float] | None = None  # stage 1's uncertain band: {"low", "high"}; None: no stage 2
        self.stage2_thresholds: dict[str, float] = {}
        if mode != "off":
            why = second.available()
            if why:
                raise GuardError(
                    f"the guard's second stage cannot load: {why} (HOMEFIRE_GUARD_STAGE2=off runs stage 1 alone)"
                )
            head2 = second.Head()
            self.band = dict(head2.bands[strictness])
            base2 = dict(head2.thresholds[strictness]) | dict(thresholds or {})  # an override holds for both stages
            self.stage2_thresholds = {k: float(min(max(v + offset, 0.01), 0.999)) for k, v in base2.items()}
            if mode == "eager":
                self._second()

    def _second(self) -> second.SecondStage:
        """Stage 2, loaded on first use (a lock: two threads never load it twice)."""
        with self._stage2_lock:
            if self._stage2 is None:
                self._stage2 = second.SecondStage(threads=self.threads)
            return self._stage2

    def escalates(self, peak: dict[str, float]) -> bool:
        """Is a prompt with these stage-1 scores in the uncertain band (so stage 2 decides)?"""
        if self.band is None:
            return False
        top = max(peak.values())
        blocked = any(peak[lab] >= self.thresholds[lab] for lab in BLOCKING)
        return (not blocked and top >= self.band["low"]) or (blocked and top < self.band["high"])

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
        stage, s2 = 1, None
        decide, thresholds = peak, self.thresholds
        if self.escalates(peak):
            s2, whole = self._second().judge(clean)
            # Stage 2 reads a long text's first and last windows only: it cannot clear a block on what it did
            # not read (an ask buried mid-text), so there stage 1's block stands.
            if whole or not any(peak[lab] >= self.thresholds[lab] for lab in BLOCKING):
                stage, decide, thresholds = 2, s2, self.stage2_thresholds
        # The label that clears its threshold by the widest margin (relative to the threshold) wins.
        over = {lab: decide[lab] / thresholds[lab] for lab in BLOCKING if decide[lab] >= thresholds[lab]}
        s2r = _rounded(s2) if s2 is not None else None
        if not over:
            score = float(probs[:, idx["benign"]].min()) if stage == 1 else 1.0 - max(decide.values())
            reason = "no sign of harm" if stage == 1 else "no sign of harm (judged again by the second stage)"
            return Verdict(True, "benign", round(score, 4), "", _ms(start), reason, _rounded(peak), stage, s2r)
        label = max(over, key=lambda lab: over[lab])
        if stage == 2 and peak["harmful"] >= peak["jailbreak"]:
            # Stage 2 decides whether to block; what kind of harm it is stays stage 1's reading, so an ask
            # about hurting oneself keeps its own category (and its supportive reply) after a stage-2 block.
            chunk = int(np.argmax(probs[:, idx["harmful"]]))
            if self.head.category(emb[chunk], "harmful") == SELF_HARM:
                label = "harmful"
        chunk = int(np.argmax(probs[:, idx[label]]))
        category = self.head.category(emb[chunk], label)
        reason = f"Blocked because {_REASONS[label]} ({category})."
        return Verdict(False, label, round(decide[label], 4), category, _ms(start), reason, _rounded(peak), stage, s2r)


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


def _rounded(d: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in d.items()}
