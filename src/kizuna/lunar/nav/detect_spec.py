"""Settings and output columns of the crater detector (:mod:`kizuna.lunar.nav.detect`).

Kept apart from the detector's numba kernels so that the ``kizuna lunar detect`` command can show the
defaults without importing them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kizuna.errors import InputError

if TYPE_CHECKING:
    from kizuna.lunar.nav.detect_model import CandidateModel

__all__ = ["DETECTION_COLUMNS", "DetectorSpec"]

DETECTION_COLUMNS = ["x_px", "y_px", "a_px", "b_px", "theta_rad", "score"]


@dataclass(frozen=True)
class DetectorSpec:
    """Detector settings: radius range (px), signature threshold of a candidate, scales per octave, rim
    refinement and its two-sided edge threshold, the candidate classifier, and the most candidates
    (strongest signatures first) refined per image.

    With ``classify`` (the default; it needs ``refine``) each refined candidate gets the probability of
    being a crater from the candidate model (:mod:`kizuna.lunar.nav.detect_model`; ``model_path`` names a
    retrained one) and is kept when it reaches ``min_probability`` (None: the model's own); the ``score``
    column is then that probability. Without it candidates are kept by ``threshold`` and
    ``edge_threshold`` alone, and ``score`` is the signature strength.
    """

    min_radius_px: float = 4.0
    max_radius_px: float | None = None
    threshold: float = 0.5
    scales_per_octave: int = 4
    refine: bool = True
    edge_threshold: float = 0.0
    classify: bool = True
    min_probability: float | None = None
    model_path: str | None = None
    max_candidates: int = 2000

    def __post_init__(self) -> None:
        if self.min_radius_px < 2.0:
            raise InputError(f"min_radius_px={self.min_radius_px}: expected >= 2 px")
        if self.threshold <= 0:
            raise InputError(f"threshold={self.threshold}: expected a positive score")
        if self.min_probability is not None and not (0.0 <= self.min_probability <= 1.0):
            raise InputError(f"min_probability={self.min_probability}: expected a probability in [0, 1]")
        if self.max_candidates < 1:
            raise InputError(f"max_candidates={self.max_candidates}: expected at least 1")
        if self.classify and not self.refine:
            raise InputError("classify needs refine: the candidate classifier uses the rim fit")

    def model(self) -> CandidateModel:
        """Return the candidate classifier these settings use (the shipped one unless model_path)."""
        from kizuna.lunar.nav.detect_model import CandidateModel, default_model

        return default_model() if self.model_path is None else CandidateModel.load(self.model_path)
