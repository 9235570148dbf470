"""examples/camera: a simulated camera IOC, driven as a user would, with
caput, p4p and the C pvget/pvmonitor tools: the image's pixels and
attributes, its rate, and ROI PVs made and removed at run time."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from softioc.testing import IOCProcess, monitor, wait_until

pytest.importorskip("p4p", reason="pip install p4p (in the test extra)")
from p4p.client.thread import RemoteError  # noqa: E402

CAMERA = Path(__file__).parents[1] / "examples" / "camera" / "camera_ioc.py"
W, H = 64, 48


def pattern(n: int, gain: float) -> np.ndarray:
    """The pixels the example documents for frame n, computed here anew."""
    y, x = np.mgrid[0:H, 0:W]
    return np.minimum(((x + 2 * y + 4 * n) % 4096) * gain, 65535).astype(np.uint16)


@pytest.fixture(scope="module")
def ioc() -> Iterator[IOCProcess]:
    args = [str(CAMERA), "--width", str(W), "--height", str(H), "--prefix", "TCAM"]
    with IOCProcess(args, wait_for="TCAM:FRAMES") as started:
        yield started


def pvget(ioc: IOCProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return ioc.run_tool("pvget", "-w", "5", *args, check=False, timeout=30)


def test_frames_are_the_documented_pattern(ioc: IOCProcess, pva_nt: Any) -> None:
    ioc.caput("TCAM:GAIN", "3")
    def gain() -> float:
        attrs = {a.name: a.value for a in pva_nt.get("TCAM:IMAGE", timeout=5).raw.attribute}
        return float(attrs["Gain"])

    wait_until(lambda: gain() == 3.0, timeout=10, what="a frame taken with gain 3")
    image = pva_nt.get("TCAM:IMAGE", timeout=5)
    attrs = {a.name: a.value for a in image.raw.attribute}
    assert image.shape == (H, W) and image.dtype == np.uint16
    assert attrs["ColorMode"] == 0 and attrs["Gain"] == 3.0
    assert np.array_equal(image, pattern(int(attrs["FrameNumber"]), 3.0))
    assert image.raw.uniqueId == attrs["FrameNumber"]
    out = pvget(ioc, "TCAM:IMAGE")
    assert out.returncode == 0 and "NTNDArray" in out.stdout, out.stdout


def test_exposure_sets_the_frame_rate(ioc: IOCProcess) -> None:
    ioc.caput("TCAM:EXPOSURE", "0.05")
    with monitor(ioc, "TCAM:IMAGE", tool="pvmonitor", options=["-r", "uniqueId"],
                 settle=0) as mon:
        assert mon.stdout is not None
        ids = []
        while len(ids) < 6:
            line = mon.stdout.readline()
            ids += [int(w) for w in line.split() if w.isdigit()]
    steps = np.diff(ids[1:])
    assert (steps >= 1).all() and steps.max() <= 3, ids   # every frame or nearly
    ioc.caput("TCAM:EXPOSURE", "0.1")


def test_roi_pvs_come_and_go(ioc: IOCProcess, pva_nt: Any) -> None:
    ioc.caput("TCAM:ROI:COUNT", "2")
    wait_until(lambda: pvget(ioc, "TCAM:ROI:2:TOTAL").returncode == 0, timeout=10,
               what="TCAM:ROI:2:TOTAL served")
    wait_until(lambda: pva_nt.get("TCAM:ROI:2:TOTAL", timeout=5) > 0, timeout=10,
               what="a frame's TCAM:ROI:2:TOTAL")
    ioc.caput("TCAM:ACQUIRE", "Stop")
    frame_count = ioc.caget("TCAM:FRAMES")
    wait_until(lambda: ioc.caget("TCAM:FRAMES") == frame_count, timeout=5, interval=0.3,
               what="acquisition stopped")
    image = pva_nt.get("TCAM:IMAGE", timeout=5)
    top_right = np.asarray(image)[0:H // 2, W // 2:W]
    assert pva_nt.get("TCAM:ROI:2:TOTAL", timeout=5) == int(top_right.sum())
    assert pva_nt.get("TCAM:ROI:2:MEAN", timeout=5) == pytest.approx(top_right.mean())
    ioc.caput("TCAM:ROI:COUNT", "1")
    wait_until(lambda: pvget(ioc, "-w", "1", "TCAM:ROI:2:TOTAL").returncode != 0, timeout=10,
               what="TCAM:ROI:2:TOTAL removed")
    assert pvget(ioc, "TCAM:ROI:1:MEAN").returncode == 0
    # more ROIs than the table has rows: refused, nothing made
    assert "Channel write request failed" in ioc.caput("TCAM:ROI:COUNT", "5").stdout
    assert pvget(ioc, "-w", "1", "TCAM:ROI:5:MEAN").returncode != 0
    ioc.caput("TCAM:ACQUIRE", "Acquire")


def test_the_roi_table_takes_only_rectangles_inside_the_image(pva_nt: Any) -> None:
    rois = pva_nt.get("TCAM:ROIS", timeout=5)
    assert list(rois.labels) == ["Name", "X", "Y", "Width", "Height"]
    assert list(rois.value.name) == ["top left", "top right", "bottom left", "bottom right"]
    with pytest.raises(RemoteError, match="refused by on_put"):
        pva_nt.put("TCAM:ROIS", {"value": {"x": [0, 60, 0, 0], "width": [10, 10, 10, 10]}},
                wait=True, timeout=5)
    pva_nt.put("TCAM:ROIS", {"value": {"name": ["a", "b", "c", "d"]}}, wait=True, timeout=5)
    assert list(pva_nt.get("TCAM:ROIS", timeout=5).value.name) == ["a", "b", "c", "d"]
