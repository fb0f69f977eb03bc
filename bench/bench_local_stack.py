"""Measure the local stacker on a full-size S50 block: wall time, peak memory, temporary disk.

Run: ``python bench/bench_local_stack.py [--registrar true|default] [--frames 90 180]``.

Writes each block of 1920 x 1080 GRBG subs (background, noise, ~150 stars, hot pixels, a
satellite trail in one frame, a rotation ramp of 5 degrees and +-50 px dither) as FITS files to
a temporary folder, then stacks it with :func:`stack_block` in a fresh child process and reports
that process's wall time, CPU time (the child's whole life, imports included) and peak resident
memory (``ru_maxrss``), and what it left in its own
empty ``TMPDIR`` and beside the output.

``--registrar true`` (the default) registers with the transforms the frames were rendered with
(``tests/local_stack/frames_for_combine.TrueRegistrar``), so only reading, debayering, warping,
rejection and writing are timed. ``--registrar default`` uses the real star detection and
matching (``local_stack.stars`` / ``local_stack.register``), when they are installed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.local_stack.frames_for_combine import channel_map, write_sub  # noqa: E402

from crowdsky.adapters.local_stack import Similarity  # noqa: E402

SHAPE = (1920, 1080)
STAMP = 9


def transforms(count: int, seed: int = 1) -> list[Similarity]:
    """A rotation ramp of 5 degrees over the block and +-50 px dither, the first the identity."""
    rng = np.random.default_rng(seed)
    out = [Similarity()]
    for i in range(1, count):
        angle = math.radians(5.0 * i / count)
        dx, dy = rng.uniform(-50, 50, 2)
        out.append(Similarity(1.0, angle, float(dx), float(dy)))
    return out


def render(transform: Similarity, index: int, stars: np.ndarray) -> np.ndarray:
    """One frame: GRBG background, ~150 stars drawn as stamps at ``transform``, noise."""
    rng = np.random.default_rng(index)
    rows, cols = SHAPE
    image = np.array([900.0, 1200.0, 1000.0], dtype=np.float32)[channel_map(rows, cols)]
    image += rng.normal(0.0, 20.0, SHAPE).astype(np.float32)
    sigma = 2.8 / 2.355
    offsets = np.arange(-STAMP, STAMP + 1, dtype=np.float32)
    for x, y, peak in stars:
        fx, fy = transform.apply(float(x), float(y))
        cx, cy = round(fx), round(fy)
        if not (STAMP <= cx < cols - STAMP and STAMP <= cy < rows - STAMP):
            continue
        gx = np.exp(-((offsets + cx - fx) ** 2) / (2 * sigma**2))
        gy = np.exp(-((offsets + cy - fy) ** 2) / (2 * sigma**2))
        image[cy - STAMP : cy + STAMP + 1, cx - STAMP : cx + STAMP + 1] += peak * np.outer(gy, gx)
    if index == 3:  # a satellite trail along a diagonal
        for t in range(0, 1900):
            image[t, (t * 1080) // 1920] += 5000.0
    image[rng.integers(0, rows, 40), rng.integers(0, cols, 40)] = 60000.0
    hot = np.random.default_rng(0)
    image[hot.integers(0, rows, 200), hot.integers(0, cols, 200)] = 50000.0
    return np.rint(np.clip(image, 0, 65535)).astype(np.uint16)


def write_block(folder: Path, count: int) -> None:
    rng = np.random.default_rng(7)
    stars = np.column_stack(
        (rng.uniform(0, 1080, 150), rng.uniform(0, 1920, 150), rng.uniform(300, 20000, 150))
    )
    for i, transform in enumerate(transforms(count)):
        write_sub(folder / f"Light_M 81_10.0s_IRCUT_{i:04d}.fit", render(transform, i, stars), i)


def child(folder: Path, output: Path, registrar_name: str) -> None:
    """Stack the block in ``folder`` and print wall time and peak memory as JSON."""
    from crowdsky.adapters.local_stack import stack_block

    paths = sorted(folder.glob("Light_*.fit"))
    registrar = None
    if registrar_name == "true":
        from tests.local_stack.frames_for_combine import TrueRegistrar

        registrar = TrueRegistrar(transforms(len(paths)))
    start = time.perf_counter()
    result = stack_block(paths, output, registrar=registrar)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime  # the machine may be shared: CPU time says more
    answer = {"wall_s": wall, "cpu_s": cpu, "peak_mib": usage.ru_maxrss / 1024}
    print(json.dumps({**answer, "kept": len(result.kept)}))


def measure(count: int, registrar: str, base: Path) -> dict[str, float]:
    folder = base / f"block{count}"
    folder.mkdir()
    write_block(folder, count)
    out_dir, tmp = base / f"out{count}", base / f"tmp{count}"
    out_dir.mkdir()
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}
    output = out_dir / f"CrowdSky_{count}.fit"
    args = [sys.executable, __file__, "--child", str(folder), str(output), registrar]
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    answer: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    temp_bytes = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
    extra = [
        p.name
        for p in out_dir.iterdir()
        if p.name not in (output.name, f"CrowdSky_{count}.jpg", f"CrowdSky_{count}_thn.jpg")
    ]
    answer["temp_disk_mib"] = temp_bytes / 2**20
    answer["stray_files"] = len(extra)
    for path in folder.iterdir():
        path.unlink()
    return answer


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registrar", choices=("true", "default"), default="true")
    parser.add_argument("--frames", type=int, nargs="+", default=[90, 180])
    options = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as base:
        for count in options.frames:
            results[count] = measure(count, options.registrar, Path(base))
            print(f"{count} frames ({options.registrar} registrar): {json.dumps(results[count])}")
    if 90 in results and 180 in results:
        ratio = results[180]["peak_mib"] / results[90]["peak_mib"]
        print(f"peak memory 180 / 90 frames: {ratio:.3f}")


if __name__ == "__main__":
    main()
