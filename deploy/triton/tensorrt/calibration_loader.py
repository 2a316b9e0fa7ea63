"""Polygraphy data loader for the INT8 calibration of open_nsfw_int8's TensorRT plan.

Feeds the same images the CPU variant is calibrated on (scripts/models/images.py calibration:
scikit-image photographs and H.264 frames of ffmpeg patterns), as the plan's input takes them:
FRAME, UINT8 RGB [16, 224, 224, 3]. TensorRT calibrates at the optimisation profile's opt shape,
so every batch has the opt batch size (16) and the last partial batch is left out.

  polygraphy convert ... --data-loader-script deploy/triton/tensorrt/calibration_loader.py
reads deploy/triton/tensorrt/onnx/calibration.rgb (or $FRAMEWIRE_CALIBRATION_RGB), written by
  python scripts/models/images.py calibration deploy/triton/tensorrt/onnx/calibration.rgb
"""
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH = 16


def load_data():
    path = os.environ.get("FRAMEWIRE_CALIBRATION_RGB", os.path.join(HERE, "onnx", "calibration.rgb"))
    images = np.fromfile(path, dtype=np.uint8).reshape(-1, 224, 224, 3)
    for start in range(0, len(images) - BATCH + 1, BATCH):
        yield {"FRAME": np.ascontiguousarray(images[start : start + BATCH])}
