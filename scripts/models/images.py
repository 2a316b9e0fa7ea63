"""Image sets for the quantized open_nsfw variants, made from what the project can ship or make.

- photographs shipped inside PyPI's scikit-image (its `skimage/data` folder, read from the
  installed package: nothing is downloaded), cropped and flipped deterministically;
- the 200 small face / non-face images of scikit-image's `lfw_subset.npy` (evaluation only);
- frames of ffmpeg test patterns, encoded to H.264 and decoded again as a camera's would be.

Two disjoint sets: `calibration` (what onnxruntime's static quantization observes) and
`evaluation` (what bench/models.ts compares the variants on); no photograph, no pattern is in both.
`fixed` is a handful of evaluation images for the integration test.

Every image is 224x224 RGB UINT8, scaled like the pipeline scales frames (bilinear, whole frame).

Usage: python scripts/models/images.py calibration|evaluation|fixed OUT.rgb
  writes N x 224 x 224 x 3 bytes to OUT.rgb and one line per image (its name) to OUT.rgb.txt.
"""
import os
import subprocess
import sys

import numpy as np
from PIL import Image

SIZE = 224

# Split by photograph: a photo and its crops are in one set only. The stereo pair
# motorcycle_left/right is near-identical, so both sit on the calibration side.
CALIBRATION_PHOTOS = [
    "astronaut.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "motorcycle_right.png",
    "hubble_deep_field.jpg", "ihc.png", "camera.png", "brick.png", "grass.png", "page.png", "moon.png",
]
EVALUATION_PHOTOS = [
    "chelsea.png", "retina.jpg", "color.png", "logo.png", "coins.png", "gravel.png", "text.png",
    "cell.png", "clock_motion.png", "horse.png", "phantom.png", "microaneurysms.png",
]
# ffmpeg lavfi sources, one per set (never both).
CALIBRATION_PATTERNS = ["testsrc2", "smptebars", "mandelbrot"]
EVALUATION_PATTERNS = ["life=s=640x360:mold=10:ratio=0.3:death_color=#C83232:life_color=#00ff00", "cellauto=s=640x360:rule=110",
                       "colorspectrum=s=640x360:type=all", "gradients=s=640x360:n=5:seed=7", "sierpinski=s=640x360"]
# The highest FP32 nsfw scores of the evaluation set (lfw:142 0.77, retina:2 0.21) and four low ones.
FIXED = ["photo:chelsea.png:0", "photo:retina.jpg:2", "photo:color.png:0", "lfw:0", "lfw:142", "pattern:1:3"]


def data_dir() -> str:
    import skimage  # only for its location: the images are files inside the package

    return os.path.join(os.path.dirname(skimage.__file__), "data")


def rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("RGBA", "LA", "P"):
        img = img.convert("RGBA")
        bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, img)
    return img.convert("RGB")


def scaled(img: Image.Image) -> np.ndarray:
    return np.asarray(img.resize((SIZE, SIZE), Image.BILINEAR), dtype=np.uint8)


def photo_crops(name: str, count: int) -> list:
    """The whole photo, then crops of 60-90 % of its sides (some mirrored), from a seed per photo."""
    img = rgb(Image.open(os.path.join(data_dir(), name)))
    w, h = img.size
    rnd = np.random.default_rng(abs(hash_name(name)))
    out = [(f"photo:{name}:0", scaled(img))]
    for i in range(1, count):
        f = rnd.uniform(0.6, 0.9)
        cw, ch = max(8, int(w * f)), max(8, int(h * f))
        x, y = int(rnd.integers(0, w - cw + 1)), int(rnd.integers(0, h - ch + 1))
        crop = img.crop((x, y, x + cw, y + ch))
        if i % 2 == 1:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        out.append((f"photo:{name}:{i}", scaled(crop)))
    return out


def hash_name(name: str) -> int:
    # Python's hash() of a str changes per process; a fixed one keeps the crops the same every run.
    h = 2166136261
    for c in name.encode():
        h = ((h ^ c) * 16777619) & 0xFFFFFFFF
    return h


def lfw(indices=None) -> list:
    faces = np.load(os.path.join(data_dir(), "lfw_subset.npy"))  # [200, 25, 25] float 0..1
    out = []
    for i in range(len(faces)) if indices is None else indices:
        grey = Image.fromarray((faces[i] * 255).round().astype(np.uint8), "L").convert("RGB")
        out.append((f"lfw:{i}", scaled(grey)))
    return out


def pattern_frames(index: int, source: str, frames: int) -> list:
    """`frames` frames, 0.4 s apart, of a lavfi pattern through H.264 (libx264, as the cameras encode)."""
    src = source if "=" in source else f"{source}=s=640x360"
    graph = f"{src}:r=25,format=yuv420p"
    enc = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", graph, "-frames:v", str(frames * 10), "-c:v", "libx264",
         "-preset", "veryfast", "-g", "25", "-threads", "1", "-f", "mpegts", "-"],
        check=True, capture_output=True,
    ).stdout
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "mpegts", "-i", "-", "-vf", f"select=not(mod(n\\,10)),scale={SIZE}:{SIZE}:flags=bilinear",
         "-vsync", "0", "-threads", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        input=enc, check=True, capture_output=True,
    ).stdout
    n = len(raw) // (SIZE * SIZE * 3)
    arr = np.frombuffer(raw[: n * SIZE * SIZE * 3], dtype=np.uint8).reshape(n, SIZE, SIZE, 3)
    return [(f"pattern:{index}:{k}", arr[k]) for k in range(n)]


def calibration() -> list:
    out = []
    for name in CALIBRATION_PHOTOS:
        out += photo_crops(name, 6)
    for i, p in enumerate(CALIBRATION_PATTERNS):
        out += pattern_frames(i, p, 10)
    return out


def evaluation() -> list:
    out = []
    for name in EVALUATION_PHOTOS:
        out += photo_crops(name, 4)
    out += lfw()
    for i, p in enumerate(EVALUATION_PATTERNS):
        out += pattern_frames(i, p, 8)
    return out


def fixed() -> list:
    wanted = set(FIXED)
    return [x for x in evaluation() if x[0] in wanted]


def write(images: list, path: str) -> None:
    with open(path, "wb") as f:
        for _, a in images:
            f.write(np.ascontiguousarray(a).tobytes())
    with open(path + ".txt", "w") as f:
        f.write("".join(n + "\n" for n, _ in images))


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[1] not in ("calibration", "evaluation", "fixed"):
        sys.exit(__doc__)
    sets = {"calibration": calibration, "evaluation": evaluation, "fixed": fixed}
    images = sets[sys.argv[1]]()
    write(images, sys.argv[2])
    print(f"{len(images)} images -> {sys.argv[2]}", file=sys.stderr)


if __name__ == "__main__":
    main()
