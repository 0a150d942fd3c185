"""Lost-in-space crater identification against the real Head 2010 + LROC 5-20 km catalogues.

Expected values come from outside the code under test: the catalogue positions (Head et al. 2010;
Povilaitis et al. 2018, as staged by DeepMoon), the exact camera poses the views are built from, and
analytic identities of the triad descriptor (an equilateral triad of equal craters; invariance under a
rotation of the sphere).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.transform import Rotation

from kizuna.errors import InputError
from kizuna.lunar.nav.id_index import (
    build_index,
    load_or_build_index,
    read_id_catalog,
    triad_descriptors,
)
from kizuna.lunar.nav.id_io import read_attitude_prior, read_camera, read_detections
from kizuna.lunar.nav.id_sim import NoiseSpec, camera_for_view, noisy_detections, view_pose
from kizuna.lunar.nav.identify import AttitudePrior, identify, rotation_angle_deg


@pytest.fixture(scope="module")
def catalogue_paths(shared_data: Path) -> list[Path]:
    d = shared_data / "lunar" / "deepmoon"
    return [d / "HeadCraters.csv", d / "LROCCraters.csv"]


@pytest.fixture(scope="module")
def index(catalogue_paths, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("KIZUNA_CACHE_DIR", str(cache))
    idx = load_or_build_index(read_id_catalog(catalogue_paths))
    yield idx
    mp.undo()


def _correct(result, view, index) -> tuple[int, int]:
    """(matches naming the detection's true crater, matches in all)."""
    row_of = {str(c): k for k, c in enumerate(index.catalog.ids)}
    good = sum(view.truth_row[i] == row_of[c] for i, c in result.matches)
    return good, result.n_matches


def test_catalogue_sizes_match_the_published_lists(catalogue_paths):
    # Head et al. (2010): 5,185 craters >= 20 km; LROC 5-20 km list: 19,335 craters (DeepMoon README).
    cat = read_id_catalog(catalogue_paths)
    assert len(cat) + len(cat.merged) == 5185 + 19335
    assert cat.ids[0] == "head-00000"
    # the LROC list repeats a few craters (same place, same size): one entry of each pair is kept
    assert 0 < len(cat.merged) < 20
    row = {c: k for k, c in enumerate(cat.ids)}
    raw = pd.read_csv(catalogue_paths[1], index_col=0)
    for dropped, kept in cat.merged:
        a, b = raw.iloc[int(dropped.split("-")[1])], raw.iloc[int(kept.split("-")[1])]
        assert abs(a["Lat"] - b["Lat"]) < 0.1 and abs(a["Diameter (km)"] / b["Diameter (km)"] - 1) < 0.3
        assert kept in row and dropped not in row
    # every centre lies on the 1737.4 km sphere (no elevation column in these lists)
    assert np.allclose(np.linalg.norm(cat.centres_me_m, axis=1), 1_737_400.0)


def test_id_csv_format_with_elevation(tmp_path):
    p = tmp_path / "cat.csv"
    p.write_text("id,lat_deg,lon_deg,diam_km,elev_m\nA,0,0,10,1000\nB,0,90,20,-500\nC,90,0,30,0\n")
    cat = read_id_catalog(p)
    assert list(cat.ids) == ["A", "B", "C"]
    # analytic: (R + h) times the unit vector of (lat, lon)
    assert np.allclose(cat.centres_me_m[0], [1_738_400.0, 0.0, 0.0])
    assert np.allclose(cat.centres_me_m[1], [0.0, 1_736_900.0, 0.0], atol=1e-6)
    assert np.allclose(cat.centres_me_m[2], [0.0, 0.0, 1_737_400.0], atol=1e-6)
    assert np.allclose(cat.radius_m, [5_000.0, 10_000.0, 15_000.0])


@pytest.mark.parametrize(
    "text, message",
    [
        ("id,lat_deg,lon_deg\nA,0,0\n", "missing columns ['diam_km']"),
        ("id,lat_deg,lon_deg,diam_km\nA,0,0,10\nB,nan,0,10\n", "line 3, column lat_deg"),
        ("id,lat_deg,lon_deg,diam_km\nA,0,0,10\nB,1,1,-4\n", "line 3, column diam_km"),
        ("id,lat_deg,lon_deg,diam_km\nA,0,0,10\nB,1,1,4\nA,2,2,5\n", "duplicate crater id 'A' on lines 2, 4"),
        ("id,lat_deg,lon_deg,diam_km\nA,95,0,10\n", "line 2, column lat_deg"),
    ],
)
def test_bad_catalogue_names_line_and_field(tmp_path, text, message):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_id_catalog(p)


def test_descriptor_of_equilateral_triad_and_rotation_invariance():
    # three equal craters at the corners of a small equilateral triangle around the north pole
    R, s, r = 1_737_400.0, 10_000.0, 1_000.0
    ang = np.radians([90.0, 210.0, 330.0])
    rho = s / math.sqrt(3.0)
    P = np.stack([rho * np.cos(ang), rho * np.sin(ang), np.full(3, R)], axis=1)
    P *= R / np.linalg.norm(P, axis=1, keepdims=True)
    d = triad_descriptors(P[None], np.full((1, 3), r))[0]
    # shape ratios 1 and radius ratios 1: logs 0; perimeter / sum of radii = s / r (to the gnomonic sag)
    assert np.allclose(d[[0, 1, 3, 4]], 0.0, atol=1e-12)
    assert d[2] == pytest.approx(math.log(s / r), abs=1e-4)
    rot = Rotation.from_euler("zyx", [40.0, -70.0, 15.0], degrees=True).as_matrix()
    d_rot = triad_descriptors((P @ rot.T)[None], np.full((1, 3), r))[0]
    assert np.allclose(d_rot, d, atol=1e-9)


def test_cache_is_keyed_by_catalogue_content(tmp_path, monkeypatch):
    monkeypatch.setenv("KIZUNA_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(3)
    lat = np.degrees(np.arcsin(rng.uniform(-0.5, 0.5, 200)))
    lon = rng.uniform(-30, 30, 200)
    df = pd.DataFrame({"id": [f"c{i}" for i in range(200)], "lat_deg": lat, "lon_deg": lon})
    df["diam_km"] = rng.uniform(5, 40, 200)
    p = tmp_path / "cat.csv"
    df.to_csv(p, index=False)
    first = load_or_build_index(read_id_catalog(p))
    again = load_or_build_index(read_id_catalog(p))
    assert not first.loaded_from_cache and again.loaded_from_cache
    assert np.array_equal(first.triads, again.triads)
    df.loc[7, "diam_km"] += 1.0
    df.to_csv(p, index=False)
    edited = load_or_build_index(read_id_catalog(p))
    assert not edited.loaded_from_cache


# Views: (lat, lon, altitude m, off-nadir deg, tilt azimuth deg, roll deg)
VIEWS = [
    (-12.0, 15.0, 150e3, 0.0, 0.0, 30.0),
    (35.0, -140.0, 300e3, 30.0, 120.0, -60.0),
    (-48.0, 100.0, 550e3, 45.0, 250.0, 10.0),
]


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("with_prior", [False, True])
def test_identifies_noisy_views_with_false_and_missed_craters(index, view, with_prior):
    cam = camera_for_view()
    R, r = view_pose(*view)
    rng = np.random.default_rng(11)
    v = noisy_detections(index, cam, R, r, NoiseSpec(1.0, 0.02, 0.3, 0.15), rng)
    prior = None
    if with_prior:
        tilt = Rotation.from_rotvec(np.radians(0.8) * np.array([0.6, -0.48, 0.64])).as_matrix()
        prior = AttitudePrior(tilt @ R, 1.0)
    res = identify(v.detections, cam, index, prior)
    assert res.status == "ok", res.reason
    good, n = _correct(res, v, index)
    assert n >= 10 and good >= 0.95 * n
    # against the pose the view was built from: within the fix's own covariance (chi-square 3 dof,
    # 0.9999 quantile 21.1) and, for the attitude, 5 sigma of its largest axis
    e = res.position_m - r
    assert e @ np.linalg.solve(res.covariance[3:, 3:], e) < 21.1
    att_sigma_deg = math.degrees(math.sqrt(np.linalg.eigvalsh(res.covariance[:3, :3]).max()))
    assert rotation_angle_deg(res.R_cam_from_me, R) < 5.0 * att_sigma_deg
    assert np.linalg.norm(e) <= 10.0 * v.gsd_m


def test_exact_rims_give_the_pose_to_a_fraction_of_a_pixel(index):
    cam = camera_for_view()
    R, r = view_pose(20.0, 60.0, 400e3, 15.0, 30.0, 0.0)
    v = noisy_detections(index, cam, R, r, NoiseSpec(), np.random.default_rng(0))
    res = identify(v.detections, cam, index)
    assert res.status == "ok"
    good, n = _correct(res, v, index)
    # every match right; craters at the size threshold of the list may go unpredicted
    assert good == n >= 0.97 * v.n_visible
    assert np.linalg.norm(res.position_m - r) < 0.2 * v.gsd_m
    assert res.reprojection_rms_px < 0.05


def test_random_ellipses_give_no_fix(index):
    cam = camera_for_view()
    rng = np.random.default_rng(5)
    n = 60
    a = rng.uniform(6, 40, n)
    det = np.column_stack([rng.uniform(50, 970, n), rng.uniform(50, 970, n), a, a * rng.uniform(0.7, 1, n),
                           rng.uniform(-1.5, 1.5, n)])  # fmt: skip
    res = identify(det, cam, index)
    assert res.status == "no_fix"


def test_wrong_attitude_prior_gives_no_fix(index):
    cam = camera_for_view()
    R, r = view_pose(-12.0, 15.0, 150e3, 0.0, 0.0, 30.0)
    v = noisy_detections(index, cam, R, r, NoiseSpec(1.0, 0.02, 0.0, 0.0), np.random.default_rng(2))
    off = Rotation.from_rotvec(np.radians(20.0) * np.array([1.0, 0.0, 0.0])).as_matrix()
    res = identify(v.detections, cam, index, AttitudePrior(off @ R, 1.0))
    assert res.status == "no_fix"


def test_two_detections_are_not_enough(index):
    res = identify(np.array([[100, 100, 10, 9, 0.0], [300, 200, 20, 18, 0.1]]), camera_for_view(), index)
    assert res.status == "no_fix" and "at least 3" in res.reason


# -- files and the command line ---------------------------------------------------------------------
def _run(*args: str, env_cache: Path) -> subprocess.CompletedProcess:
    import os

    env = dict(os.environ, KIZUNA_CACHE_DIR=str(env_cache))
    return subprocess.run([sys.executable, "-m", "kizuna", *args], capture_output=True, text=True, env=env)


def test_cli_identifies_a_view(index, catalogue_paths, tmp_path):
    cam = camera_for_view()
    R, r = view_pose(35.0, -140.0, 300e3, 30.0, 120.0, -60.0)
    v = noisy_detections(index, cam, R, r, NoiseSpec(1.0, 0.02, 0.2, 0.1), np.random.default_rng(4))
    det = tmp_path / "det.csv"
    pd.DataFrame(v.detections, columns=["x_px", "y_px", "a_px", "b_px", "theta_rad"]).assign(
        score=0.9
    ).to_csv(det, index=False)
    (tmp_path / "cam.json").write_text(json.dumps({"width": 1024, "height": 1024, "fov_deg": 60}))
    (tmp_path / "prior.json").write_text(json.dumps({"R_cam_from_me": R.tolist(), "sigma_deg": 1.0}))
    import os

    cache = Path(os.environ.get("KIZUNA_CACHE_DIR", tmp_path / "c"))
    args = ["lunar", "identify", "--detections", str(det), "--camera", str(tmp_path / "cam.json")]
    for p in catalogue_paths:
        args += ["--catalog", str(p)]
    out = tmp_path / "res.json"
    png = tmp_path / "matches.png"
    args += ["--attitude-prior", str(tmp_path / "prior.json"), "--out", str(out), "--plot", str(png)]
    proc = _run(*args, env_cache=cache)
    assert proc.returncode == 0, proc.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = json.loads(out.read_text())
    assert res["status"] == "ok"
    assert np.linalg.norm(np.array(res["position_m"]) - r) <= 3.0 * v.gsd_m
    assert res["n_matches"] == len(res["matches"]) >= 10
    assert set(res) >= {"status", "position_m", "R_cam_from_me", "matches", "n_matches",
                        "reprojection_rms_px", "elapsed_s"}  # fmt: skip


@pytest.mark.parametrize(
    "det_text, cam, message",
    [
        ("x_px,y_px,a_px,b_px\n1,2,3,2\n", {"width": 64, "height": 64, "fov_deg": 60}, "missing columns"),
        ("x_px,y_px,a_px,b_px,theta_rad\n1,2,3,nan,0\n", {"width": 64, "height": 64, "fov_deg": 60},
         "line 2, column b_px"),
        ("x_px,y_px,a_px,b_px,theta_rad\n1,2,3,2,0\n", {"width": 64, "height": 64, "fov_deg": 0},
         "'fov_deg' = 0"),
        ("x_px,y_px,a_px,b_px,theta_rad\n1,2,3,2,0\n", {"width": -5, "height": 64, "fov_deg": 60},
         "'width' = -5"),
    ],
)  # fmt: skip
def test_cli_bad_input_is_one_line_exit_2_and_no_output(tmp_path, catalogue_paths, det_text, cam, message):
    (tmp_path / "det.csv").write_text(det_text)
    (tmp_path / "cam.json").write_text(json.dumps(cam))
    out = tmp_path / "res.json"
    proc = _run("lunar", "identify", "--catalog", str(catalogue_paths[0]), "--detections",
                str(tmp_path / "det.csv"), "--camera", str(tmp_path / "cam.json"), "--out", str(out),
                env_cache=tmp_path / "cache")  # fmt: skip
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_cli_two_detections_report_no_fix(tmp_path, catalogue_paths):
    (tmp_path / "det.csv").write_text("x_px,y_px,a_px,b_px,theta_rad\n100,100,10,9,0\n300,200,20,18,0.1\n")
    (tmp_path / "cam.json").write_text(json.dumps({"width": 1024, "height": 1024, "fov_deg": 60}))
    out = tmp_path / "res.json"
    proc = _run("lunar", "identify", "--catalog", str(catalogue_paths[0]), "--detections",
                str(tmp_path / "det.csv"), "--camera", str(tmp_path / "cam.json"), "--out", str(out),
                env_cache=tmp_path / "cache")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())
    assert res["status"] == "no_fix" and "at least 3" in res["reason"]


def test_file_readers(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"fx": 800, "fy": 810, "cx": 500.5, "cy": 400, "width": 1000,
                                                  "height": 800}))  # fmt: skip
    cam = read_camera(tmp_path / "c.json")
    assert (cam.fx, cam.fy, cam.cx, cam.cy, cam.width, cam.height) == (800, 810, 500.5, 400, 1000, 800)
    (tmp_path / "f.json").write_text(json.dumps({"width": 1024, "height": 1024, "fov_deg": 90}))
    cam = read_camera(tmp_path / "f.json")
    # analytic: f = (W/2) / tan(fov/2) = 512 for 90 deg; principal point at (W/2, H/2)
    assert cam.fx == pytest.approx(512.0) and (cam.cx, cam.cy) == (512.0, 512.0)
    (tmp_path / "p.json").write_text(json.dumps({"R_cam_from_me": [[1, 0, 0], [0, 1, 0], [0, 0, 2]],
                                                  "sigma_deg": 1}))  # fmt: skip
    with pytest.raises(InputError, match="rotation matrix"):
        read_attitude_prior(tmp_path / "p.json")
    (tmp_path / "d.csv").write_text("x_px,y_px,a_px,b_px,theta_rad,score\n1,2,3,4,0,0.5\n")
    with pytest.raises(InputError, match="line 2: a_px=3, b_px=4"):
        read_detections(tmp_path / "d.csv")


def test_small_catalogue_index_builds(tmp_path):
    p = tmp_path / "tiny.csv"
    p.write_text("id,lat_deg,lon_deg,diam_km\nA,0,0,10\nB,0.5,0,12\nC,0,0.6,9\nD,0.4,0.5,11\n")
    idx = build_index(read_id_catalog(p))
    # 4 craters: C(4,3) = 4 triads, each stored in its 3 rotations
    assert len(idx) == 12
