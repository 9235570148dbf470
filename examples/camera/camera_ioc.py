"""A simulated camera: records to drive it, its image over PV Access, regions
of interest whose PVs come and go while the IOC runs.

    python examples/camera/camera_ioc.py [--width 640] [--height 480] [--prefix CAM]

Records (Channel Access and PV Access): CAM:EXPOSURE (s, also the frame
period), CAM:GAIN, CAM:ACQUIRE (Stop/Acquire), CAM:FRAMES (frames posted),
CAM:ROI:COUNT (how many regions of interest have PVs).  PV Access only:
CAM:IMAGE (NTNDArray, uint16, a moving pattern), CAM:ROIS (NTTable: name, x,
y, width, height; clients may write it), and for each region i from 1 to
CAM:ROI:COUNT, CAM:ROI:i:MEAN and CAM:ROI:i:TOTAL of the latest frame.

Pixel (x, y) of frame n is min(65535, ((x + 2 y + 4 n) mod 4096) * GAIN),
so a client can check what it receives (frame n carries the attribute
FrameNumber = n).
"""

from __future__ import annotations

import argparse
import asyncio

import numpy as np

from softioc import asyncio_dispatcher, builder, pva, softioc


def pattern(width: int, height: int, n: int, gain: float) -> np.ndarray:
    """Frame n of the simulation (rows of width pixels)."""
    y, x = np.mgrid[0:height, 0:width]
    raw = (x + 2 * y + 4 * n) % 4096
    return np.minimum(raw * gain, 65535).astype(np.uint16)


class Camera:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.exposure = builder.aOut("EXPOSURE", 0.1, EGU="s", PREC=3, DRVL=0.01, DRVH=10)
        self.gain = builder.aOut("GAIN", 1.0, PREC=2, DRVL=0, DRVH=16)
        self.acquire = builder.boolOut("ACQUIRE", ZNAM="Stop", ONAM="Acquire", initial_value=1)
        self.frames = builder.longIn("FRAMES", 0)
        self.roi_count = builder.longOut("ROI:COUNT", 0, DRVL=0, DRVH=8,
                                         validate=self.count_fits, on_update=self.make_rois)
        self.image = pva.Image("IMAGE", dtype="uint16", shape=(height, width))
        half_w, half_h = width // 2, height // 2
        self.rois = pva.Table(
            "ROIS", {"name": str, "x": int, "y": int, "width": int, "height": int},
            labels=["Name", "X", "Y", "Width", "Height"],
            initial={"name": ["top left", "top right", "bottom left", "bottom right"],
                     "x": [0, half_w, 0, half_w], "y": [0, 0, half_h, half_h],
                     "width": [half_w] * 4, "height": [half_h] * 4},
            on_put=self.rois_fit)
        self.roi_pvs: list[tuple[pva.PV, pva.PV]] = []

    def rois_fit(self, table: dict) -> bool:
        """A client's ROI table: every rectangle inside the image, and at
        least as many rows as there are ROI PVs."""
        rows = zip(table["x"], table["y"], table["width"], table["height"])
        inside = all(0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= self.width
                     and y + h <= self.height for x, y, w, h in rows)
        return inside and len(table["x"]) >= len(self.roi_pvs)

    def count_fits(self, record: object, count: int) -> bool:
        return count <= len(self.rois.get()["x"])

    def make_rois(self, count: int) -> None:
        """ROI:1..count get their PVs; those beyond count are removed."""
        while len(self.roi_pvs) > count:
            for pv in self.roi_pvs.pop():
                pv.close()
        while len(self.roi_pvs) < count:
            i = len(self.roi_pvs) + 1
            self.roi_pvs.append((pva.PV(f"ROI:{i}:MEAN", 0.0, precision=2),
                                 pva.PV(f"ROI:{i}:TOTAL", 0)))

    def post(self, n: int) -> None:
        frame = pattern(self.width, self.height, n, self.gain.get())
        self.image.post(frame, attributes={"FrameNumber": n, "Exposure": self.exposure.get(),
                                           "Gain": self.gain.get()})
        table = self.rois.get()
        for i, (mean, total) in enumerate(self.roi_pvs):
            x, y = table["x"][i], table["y"][i]
            region = frame[y:y + table["height"][i], x:x + table["width"][i]]
            mean.post(float(region.mean()))
            total.post(int(region.sum(dtype=np.int64)))
        self.frames.set(n)

    async def run(self) -> None:
        n = 0
        while True:
            await asyncio.sleep(self.exposure.get())
            if self.acquire.get():
                n += 1
                self.post(n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--prefix", default="CAM")
    args = parser.parse_args()

    dispatcher = asyncio_dispatcher.AsyncioDispatcher()
    builder.SetDeviceName(args.prefix)
    camera = Camera(args.width, args.height)
    builder.LoadDatabase()
    softioc.iocInit(dispatcher)
    asyncio.run_coroutine_threadsafe(camera.run(), dispatcher.loop)
    softioc.interactive_ioc({**globals(), "camera": camera})


if __name__ == "__main__":
    main()
