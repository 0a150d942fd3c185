"""The crater detector's candidate classifier: which refined candidates are craters.

The shading signature and the rim fit of :mod:`kizuna.lunar.nav.detect` find nearly every crater, but
at high Sun a worn crater and a phantom made of a neighbour's shading or the background look alike to
any single threshold. A small gradient-boosted tree ensemble on ten features of each candidate
(signature score, rim-edge contrast on both sides, how well the rim fits a circle, how far the fit moved,
and the image's typical rim contrast) gives each candidate a probability of being a crater.

The model is trained on rendered images of the procedural terrain, whose true craters are known
(:func:`train_candidate_model`, run by ``python -m kizuna.lunar.nav.detect_model``; the terrain seeds it
uses are disjoint from those of the tests and benchmarks), with scikit-learn; it is stored as plain JSON
(the trees' split features, thresholds and leaf values) and evaluated with numpy and numba, so that
detection needs no scikit-learn and the file states exactly what the model is.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numba as nb
import numpy as np
from numpy.typing import NDArray

from kizuna.errors import InputError

__all__ = [
    "FEATURES",
    "CandidateModel",
    "candidate_features",
    "default_model",
    "from_sklearn",
    "train_candidate_model",
]

FEATURES = (
    "log_score",  # log of the shading-signature score
    "edge_far",  # median rim-edge contrast on the side away from the light (normalised brightness)
    "edge_near",  # the same on the side toward the light
    "edge_min_rel",  # the smaller of the two over the image's median of that value
    "inlier_fraction",  # fraction of rim rays whose edge lies on the fitted circle
    "fit_residual_rel",  # RMS distance of the rim edges from the circle over its radius
    "radius_ratio",  # fitted radius over the radius of the signature peak
    "shift_rel",  # distance from the signature peak to the fitted centre over the radius
    "log_radius_px",  # log of the fitted radius (px)
    "image_edge_median",  # the image's median of the smaller rim-edge contrast over all candidates
)

MODEL_RESOURCE = "crater_candidate_model.json"


def candidate_features(refined: NDArray) -> NDArray[np.float64]:
    """Return the (n, 10) feature matrix (see FEATURES) of refined candidates (rows of _refine_kernel)."""
    r = np.asarray(refined, dtype=float)
    if r.ndim != 2 or r.shape[1] < 10:
        raise InputError(f"refined candidates of shape {r.shape}: expected (n, 10)")
    emin = np.minimum(r[:, 4], r[:, 5])
    ctx = float(np.median(emin)) if len(r) else 0.0
    return np.column_stack(
        [
            np.log(np.maximum(r[:, 3], 1e-6)),
            r[:, 4],
            r[:, 5],
            emin / max(ctx, 1e-6),
            r[:, 6],
            r[:, 7],
            r[:, 8],
            r[:, 9],
            np.log(np.maximum(r[:, 2], 1e-6)),
            np.full(len(r), ctx),
        ]
    )


@nb.njit(cache=True)
def _trees_raw(X, feature, threshold, left, right, value, roots, base, rate):
    """Sum of the trees' leaf values (times the learning rate) plus the base log-odds, per row of X."""
    out = np.full(X.shape[0], base)
    for i in range(X.shape[0]):
        acc = 0.0
        for t in range(roots.size):
            node = roots[t]
            while left[node] >= 0:
                v = X[i, feature[node]]
                # scikit-learn sends a value <= threshold to the left child; NaN never reaches here
                node = left[node] if v <= threshold[node] else right[node]
            acc += value[node]
        out[i] += rate * acc
    return out


_TREE_ARRAYS = {"feature": np.int64, "threshold": np.float64, "left": np.int64, "right": np.int64,
                "value": np.float64, "roots": np.int64}  # fmt: skip


def _tree_arrays(d: dict) -> dict[str, NDArray]:
    """The flat node arrays of a tree ensemble's JSON dictionary (KeyError, TypeError, ValueError if bad)."""
    return {k: np.asarray(d[k], dtype=t) for k, t in _TREE_ARRAYS.items()}


def check_tree_arrays(m: Any, n_features: int, what: str) -> None:
    """Raise InputError naming ``what`` unless the flat node arrays of m form trees over n_features."""
    n = m.feature.size
    if (
        {m.threshold.size, m.left.size, m.right.size, m.value.size} != {n}
        or m.roots.size == 0
        or np.any(m.roots >= n)
        or np.any(m.left >= n)
        or np.any(m.right >= n)
        or np.any((m.left >= 0) & ((m.feature < 0) | (m.feature >= n_features)))
    ):
        raise InputError(f"{what}: inconsistent tree arrays")


@dataclass(frozen=True)
class CandidateModel:
    """A gradient-boosted tree ensemble over FEATURES; nodes of all trees in flat arrays."""

    feature: NDArray[np.int64]
    threshold: NDArray[np.float64]
    left: NDArray[np.int64]
    right: NDArray[np.int64]
    value: NDArray[np.float64]
    roots: NDArray[np.int64]
    base_log_odds: float
    learning_rate: float
    min_probability: float
    provenance: dict

    def probability(self, X: NDArray) -> NDArray[np.float64]:
        """Return the probability (0..1) that each row of the feature matrix X is a crater."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(FEATURES):
            raise InputError(f"features of shape {X.shape}: expected (n, {len(FEATURES)})")
        raw = _trees_raw(
            X, self.feature, self.threshold, self.left, self.right, self.value, self.roots,
            float(self.base_log_odds), float(self.learning_rate),
        )  # fmt: skip
        return 1.0 / (1.0 + np.exp(-raw))

    def to_json(self) -> dict:
        """Return the model as a JSON-ready dictionary."""
        return {
            "format": "kizuna crater candidate model 1",
            "features": list(FEATURES),
            "base_log_odds": self.base_log_odds,
            "learning_rate": self.learning_rate,
            "min_probability": self.min_probability,
            "roots": self.roots.tolist(),
            "feature": self.feature.tolist(),
            "threshold": [float(v) for v in self.threshold],
            "left": self.left.tolist(),
            "right": self.right.tolist(),
            "value": [float(v) for v in self.value],
            "provenance": self.provenance,
        }

    @classmethod
    def from_json(cls, d: dict, source: str = "model") -> CandidateModel:
        """Build a model from its JSON dictionary; a malformed one is an InputError naming source."""
        try:
            if d["format"] != "kizuna crater candidate model 1" or list(d["features"]) != list(FEATURES):
                raise ValueError("unknown format or feature list")
            m = cls(
                **_tree_arrays(d),
                base_log_odds=float(d["base_log_odds"]),
                learning_rate=float(d["learning_rate"]),
                min_probability=float(d["min_probability"]),
                provenance=dict(d.get("provenance", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{source}: not a kizuna crater candidate model ({exc})") from None
        check_tree_arrays(m, len(FEATURES), f"{source}: the crater candidate model")
        return m

    @classmethod
    def load(cls, path: str | Path) -> CandidateModel:
        """Read a model from a JSON file (each file is read once per process)."""
        return _load_cached(str(Path(path).resolve()), str(path))


@functools.lru_cache(maxsize=8)
def _load_cached(resolved: str, given: str) -> CandidateModel:
    try:
        d = json.loads(Path(resolved).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{given}: cannot read the crater candidate model ({exc})") from None
    return CandidateModel.from_json(d, given)


_DEFAULT: CandidateModel | None = None


def default_model() -> CandidateModel:
    """Return the model shipped with kizuna (trained on rendered procedural terrain)."""
    global _DEFAULT
    if _DEFAULT is None:
        ref = resources.files("kizuna") / "data" / MODEL_RESOURCE
        _DEFAULT = CandidateModel.from_json(json.loads(ref.read_text()), MODEL_RESOURCE)
    return _DEFAULT


def train_candidate_model(
    seeds: range | list[int],
    frames_per_seed: int = 3,
    min_probability: float = 0.5,
    n_estimators: int = 200,
    max_depth: int = 3,
    learning_rate: float = 0.1,
    progress: bool = True,
) -> tuple[CandidateModel, dict]:
    """Train the candidate classifier on rendered nadir-ish frames of the procedural terrain.

    Each seed gives a terrain and ``frames_per_seed`` frames (1024 x 1024 px, 30 deg field of view)
    at altitudes of 250 m to 5 km, Sun elevations of 5 to 60 deg and any azimuth. A candidate is labelled
    a crater when a true crater lies within half the smaller radius with a radius ratio below 1.5 (the
    rule of :func:`kizuna.lunar.nav.scoring.score_detections`). Needs scikit-learn. Returns the model and
    a dictionary of training counts.
    """
    try:
        from sklearn.ensemble import GradientBoostingClassifier
    except ImportError as exc:  # pragma: no cover - scikit-learn is a dependency
        raise InputError("training the candidate classifier needs scikit-learn") from exc
    X, y = _training_set(list(seeds), frames_per_seed, progress)
    if len(np.unique(y)) < 2:
        raise InputError("training frames gave candidates of one class only: use more seeds")
    clf = GradientBoostingClassifier(
        n_estimators=n_estimators, max_depth=max_depth, learning_rate=learning_rate, subsample=0.8,
        random_state=0,
    )  # fmt: skip
    clf.fit(X, y)
    info = {"frames": len(list(seeds)) * frames_per_seed, "candidates": int(len(y)), "craters": int(y.sum())}
    provenance = {
        "trained_on": "kizuna procedural terrain, rendered nadir-ish 1024 px frames",
        "terrain_seeds": [int(min(seeds)), int(max(seeds))],
        "frames_per_seed": frames_per_seed,
        "n_estimators": n_estimators,
        "max_depth": max_depth,
        **info,
    }
    return from_sklearn(clf, X[:1], min_probability, provenance), info


def from_sklearn(clf: Any, X_one: NDArray, min_probability: float, provenance: dict) -> CandidateModel:
    """Return the CandidateModel of a fitted binary scikit-learn GradientBoostingClassifier.

    ``X_one`` is any one feature row: the ensemble's constant term is read from the public decision
    function there, less the trees' sum.
    """
    feature, threshold, left, right, value, roots = [], [], [], [], [], []
    offset = 0
    for est in clf.estimators_[:, 0]:
        t = est.tree_
        leaf = t.children_left < 0
        roots.append(offset)
        feature.extend(np.where(leaf, -1, t.feature).tolist())
        threshold.extend(t.threshold.tolist())
        left.extend(np.where(leaf, -1, t.children_left + offset).tolist())
        right.extend(np.where(leaf, -1, t.children_right + offset).tolist())
        value.extend(t.value[:, 0, 0].tolist())
        offset += t.node_count
    rate = float(clf.learning_rate)
    tree_sum = sum(est.predict(X_one)[0] for est in clf.estimators_[:, 0])
    base = float(clf.decision_function(X_one)[0] - rate * tree_sum)
    return CandidateModel(
        feature=np.asarray(feature, dtype=np.int64), threshold=np.asarray(threshold, dtype=float),
        left=np.asarray(left, dtype=np.int64), right=np.asarray(right, dtype=np.int64),
        value=np.asarray(value, dtype=float), roots=np.asarray(roots, dtype=np.int64), base_log_odds=base,
        learning_rate=rate, min_probability=min_probability, provenance=provenance,
    )  # fmt: skip


def _training_set(seeds: list[int], frames_per_seed: int, progress: bool) -> tuple[NDArray, NDArray]:
    """Features and labels of the candidates in the training frames."""
    from kizuna.core.camera import Camera
    from kizuna.core.progress import progress_bar
    from kizuna.core.rotations import look_at
    from kizuna.lunar.nav.conics import project_circles
    from kizuna.lunar.nav.detect import DetectorSpec, _as_image, _candidates, _normalise
    from kizuna.lunar.nav.render import render, sun_direction_l
    from kizuna.lunar.nav.scoring import _pairs
    from kizuna.lunar.nav.terrain import Terrain, TerrainSpec

    cam = Camera.from_fov(1024, 1024, 30.0)
    spec = DetectorSpec(threshold=0.5, edge_threshold=0.0)
    Xs, ys = [], []
    done = 0
    with progress_bar("training frames", len(seeds) * frames_per_seed, quiet=not progress) as advance:
        for seed in seeds:
            rng = np.random.default_rng(1000 + seed)
            terrain = Terrain(TerrainSpec(seed=seed))
            for _ in range(frames_per_seed):
                alt = float(np.exp(rng.uniform(math.log(250.0), math.log(5000.0))))
                el = float(rng.choice([5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0]))
                az = float(rng.uniform(0.0, 360.0))
                xy = rng.uniform(-500.0, 500.0, 2)
                g = float(terrain.height(xy[0], xy[1], resolution_m=5.0))
                p = np.array([xy[0], xy[1], g + alt])
                tilt = rng.normal(0.0, 0.05, 2) * alt
                aim = np.array([xy[0] + tilt[0], xy[1] + tilt[1], g])
                R = look_at(p, aim, up=(math.cos(az), math.sin(az), 0.0))
                sun = sun_direction_l(az + 37.0, el)
                frame = render(terrain, cam, R, p, sun, rng=rng)
                s = R @ sun
                img = _normalise(_as_image(frame.image))
                ref, (cx, cy, ux, uy, vx, vy, ox, oy) = _candidates(img, math.atan2(s[1], s[0]), spec)
                done += 1
                advance(done)
                if len(ref) == 0:
                    continue
                xt, yt = ref[:, 0] - ox, ref[:, 1] - oy
                xy_px = np.column_stack([cx + xt * ux + yt * vx, cy + xt * uy + yt * vy])
                hit = frame.hit_l.reshape(-1, 3)
                hit = hit[np.isfinite(hit[:, 0])]
                c = terrain.craters(
                    hit[:, 0].min(), hit[:, 0].max(), hit[:, 1].min(), hit[:, 1].max(), 4.5 * alt / cam.fx
                )
                X_c = c[["x_m", "y_m", "z_m"]].to_numpy()
                ell = project_circles(X_c, 0.5 * c.diameter_m.to_numpy(), cam, R, p)
                ok, _ = _pairs(xy_px, ref[:, 2], ell[:, :2], ell[:, 2])
                Xs.append(candidate_features(ref))
                ys.append(ok.astype(int))
    return np.vstack(Xs), np.concatenate(ys)


def main() -> None:  # pragma: no cover - run by hand to retrain the shipped model
    """Train the shipped model: python -m kizuna.lunar.nav.detect_model OUT.json [FIRST LAST]."""
    import sys

    out = Path(sys.argv[1])
    first, last = (int(sys.argv[2]), int(sys.argv[3])) if len(sys.argv) > 3 else (1000, 1060)
    model, info = train_candidate_model(range(first, last))
    out.write_text(json.dumps(model.to_json()) + "\n")
    print(json.dumps(info))


if __name__ == "__main__":  # pragma: no cover
    main()
