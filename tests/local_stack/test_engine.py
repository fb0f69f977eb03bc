"""stack_block: a block of raw sub files in, the device's stack format out."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from astropy.io import fits
from tests.local_stack.frames_for_combine import (
    Scene,
    TrueRegistrar,
    dithered,
    render,
    sub_header,
    write_sub,
)

from crowdsky.adapters.local_stack import Similarity, stack_block
from crowdsky.errors import LocalStackCancelled, LocalStackError

STARS = ((10.0, 12.0, 4000.0), (30.0, 40.0, 2500.0), (20.0, 55.0, 6000.0))


def _block(
    folder: Path, transforms: list[Similarity], scene: Scene, noise: float = 0.0
) -> list[Path]:
    folder.mkdir(exist_ok=True)
    return [
        write_sub(
            folder / f"Light_M 81_10.0s_IRCUT_{i:03d}.fit", render(scene, t, noise=noise, seed=i), i
        )
        for i, t in enumerate(transforms)
    ]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_flat_block_stacks_to_its_levels_within_one_adu(tmp_path: Path) -> None:
    transforms = dithered(6, seed=1)
    paths = _block(tmp_path / "sub", transforms, Scene(shape=(64, 48)))
    out = tmp_path / "stack.fit"
    result = stack_block(paths, out, registrar=TrueRegistrar(transforms))
    planes = fits.getdata(out)
    assert planes.shape == (3, 64, 48)
    for plane, level in zip(planes, (1000, 2000, 3000), strict=True):
        assert np.abs(plane.astype(int) - level).max() <= 1
    assert len(result.kept) == 6
    assert result.left_out == ()


def test_the_output_has_the_device_layout_and_keywords(tmp_path: Path) -> None:
    transforms = dithered(5, seed=2)
    paths = _block(tmp_path / "sub", transforms, Scene(stars=STARS), noise=10.0)
    out = tmp_path / "CrowdSky_4_M 81.fit"
    registrar = TrueRegistrar(transforms, reject={0: "too few stars (2)"}, reference=1)
    registrar.transforms = [t.then(transforms[1].inverse()) for t in transforms]
    stack_block(paths, out, registrar=registrar)
    with fits.open(out, do_not_scale_image_data=True) as hdul:
        assert len(hdul) == 1
        raw = hdul[0].header
        assert (raw["BITPIX"], raw["NAXIS"], raw["BZERO"]) == (16, 3, 32768)
        assert (raw["NAXIS1"], raw["NAXIS2"], raw["NAXIS3"]) == (48, 64, 3)
    header = fits.getheader(out)
    first = sub_header(1)  # frame 0 was left out: frame 1 is the first combined
    assert header["STACKCNT"] == 4
    assert header["EXPTIME"] == 10.0
    assert header["TOTALEXP"] == 40.0
    assert header["DATE-OBS"] == first["DATE-OBS"]
    for key in ("RA", "DEC", "OBJECT", "FILTER", "INSTRUME", "TELESCOP", "FOCALLEN", "GAIN"):
        assert header[key] == first[key]
    assert "BAYERPAT" not in header
    assert fits.getdata(out).dtype == np.uint16
    thumb = cv2.imdecode(
        np.frombuffer((tmp_path / "CrowdSky_4_M 81_thn.jpg").read_bytes(), np.uint8),
        cv2.IMREAD_COLOR,
    )
    assert thumb is not None
    assert max(thumb.shape[:2]) == 320


def test_green_red_blue_land_in_their_planes(tmp_path: Path) -> None:
    transforms = [Similarity(), Similarity(tx=2.0, ty=4.0), Similarity(tx=-2.0, ty=2.0)]
    scene = Scene(background=(300.0, 5000.0, 900.0))
    out = tmp_path / "s.fit"
    stack_block(
        _block(tmp_path / "sub", transforms, scene), out, registrar=TrueRegistrar(transforms)
    )
    assert [int(np.median(p)) for p in fits.getdata(out)] == [300, 5000, 900]


def test_same_input_gives_the_same_bytes_and_raw_subs_stay_untouched(tmp_path: Path) -> None:
    transforms = dithered(7, seed=3)
    paths = _block(tmp_path / "sub", transforms, Scene(stars=STARS), noise=15.0)
    before = [(_digest(p), p.stat().st_mtime_ns) for p in paths]
    outputs = []
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        out = tmp_path / run / "CrowdSky_7.fit"
        stack_block(paths, out, registrar=TrueRegistrar(transforms))
        outputs.append((_digest(out), _digest(out.with_name("CrowdSky_7_thn.jpg"))))
    assert outputs[0] == outputs[1]
    assert [(_digest(p), p.stat().st_mtime_ns) for p in paths] == before
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == sorted(p.name for p in paths)


def test_strips_of_any_height_give_the_same_stack(tmp_path: Path) -> None:
    transforms = [Similarity(1.0, 0.3, 8.0, -5.0), *dithered(5, seed=4)]
    transforms = [t.then(transforms[0].inverse()) for t in transforms]
    paths = _block(tmp_path / "sub", transforms, Scene(stars=STARS), noise=15.0)
    whole, strips = tmp_path / "whole.fit", tmp_path / "strips.fit"
    stack_block(paths, whole, registrar=TrueRegistrar(transforms))
    # 6 frames x 3 x 48 columns x 4 bytes = 3456 bytes a row: 5-row strips.
    stack_block(paths, strips, registrar=TrueRegistrar(transforms), strip_budget=5 * 3456)
    a, b = fits.getdata(whole), fits.getdata(strips)
    assert np.array_equal(a, b)


def test_a_frame_the_registrar_rejects_is_counted_with_its_reason_and_not_combined(
    tmp_path: Path,
) -> None:
    transforms = [Similarity(), Similarity(tx=1.0), Similarity(tx=-1.0, ty=1.0)]
    folder = tmp_path / "sub"
    paths = _block(folder, transforms[:2], Scene())
    bright = Scene(background=(9000.0, 9000.0, 9000.0))
    paths.append(write_sub(folder / "Light_cloud.fit", render(bright, transforms[2]), 2))
    out = tmp_path / "s.fit"
    result = stack_block(paths, out, registrar=TrueRegistrar(transforms, reject={2: "no match"}))
    assert result.kept == (paths[0].name, paths[1].name)
    assert result.left_out == (("Light_cloud.fit", "no match"),)
    assert fits.getheader(out)["STACKCNT"] == 2
    assert int(fits.getdata(out)[0].max()) == 1000


def test_nothing_registrable_is_an_error_and_writes_nothing(tmp_path: Path) -> None:
    transforms = dithered(3, seed=5)
    paths = _block(tmp_path / "sub", transforms, Scene())
    registrar = TrueRegistrar(transforms, reject={1: "too few stars (0)", 2: "no match"})
    with pytest.raises(LocalStackError, match="too few stars"):
        stack_block(paths, tmp_path / "s.fit", registrar=registrar)
    assert not (tmp_path / "s.fit").exists()


def test_an_unreadable_sub_is_an_error_not_a_frame_left_out(tmp_path: Path) -> None:
    transforms = dithered(3, seed=6)
    paths = _block(tmp_path / "sub", transforms, Scene())
    broken = tmp_path / "broken.fit"
    broken.write_bytes(paths[1].read_bytes()[:4000])
    with pytest.raises(LocalStackError, match=r"broken\.fit"):
        stack_block(
            [paths[0], broken, paths[2]], tmp_path / "s.fit", registrar=TrueRegistrar(transforms)
        )


@pytest.mark.parametrize("after", [1, 4, 8])  # in pass 1, between pass 2's frames, at the end
def test_cancelling_leaves_no_output_and_no_part_file(tmp_path: Path, after: int) -> None:
    transforms = dithered(4, seed=7)
    paths = _block(tmp_path / "sub", transforms, Scene())
    polls = iter(range(1000))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(LocalStackCancelled):
        stack_block(
            paths,
            out_dir / "CrowdSky_4.fit",
            registrar=TrueRegistrar(transforms),
            cancelled=lambda: next(polls) >= after,
        )
    assert list(out_dir.iterdir()) == []


def test_progress_climbs_to_its_total(tmp_path: Path) -> None:
    transforms = dithered(4, seed=8)
    paths = _block(tmp_path / "sub", transforms, Scene())
    seen: list[tuple[int, int]] = []
    stack_block(
        paths,
        tmp_path / "s.fit",
        registrar=TrueRegistrar(transforms),
        on_frame=lambda d, t: seen.append((d, t)),
    )
    assert seen[:4] == [(1, 8), (2, 8), (3, 8), (4, 8)]
    assert seen[-1] == (8, 8)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
