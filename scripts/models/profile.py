"""Where the time goes in each open_nsfw variant under onnxruntime's CPU provider, and which
operators run in which precision after onnxruntime's graph optimisations (what bench/models.ts
cannot see through Triton).

Usage: python scripts/models/profile.py [BATCH]   (reads the ONNX files from the model repository)
Prints, per variant: the optimised graph's operators by type, with the element type of their
weights (or of their first input when that is known), and the share of run time per operator type
over 4 runs of a batch of crops of one evaluation photograph.
"""
import collections
import glob
import json
import os
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", "..", "deploy", "triton", "models"))
TYPES = {1: "fp32", 2: "u8", 3: "i8", 10: "fp16", 6: "i32", 7: "i64"}


def main() -> None:
    batch = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    sys.path.insert(0, HERE)
    import images

    frames = np.stack([a for _, a in images.photo_crops("chelsea.png", batch)])
    x = frames[..., ::-1].astype(np.float32) - np.array([104.0, 117.0, 123.0], dtype=np.float32)
    for name in ("open_nsfw", "open_nsfw_int8", "open_nsfw_fp16"):
        path = os.path.join(REPO, name, "1", "open_nsfw.onnx")
        with tempfile.TemporaryDirectory() as tmp:
            so = ort.SessionOptions()
            so.intra_op_num_threads = 2
            so.inter_op_num_threads = 1
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
            so.optimized_model_filepath = os.path.join(tmp, "opt.onnx")
            so.enable_profiling = True
            so.profile_file_prefix = os.path.join(tmp, "prof")
            s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
            inp = s.get_inputs()[0].name
            for _ in range(4):
                s.run(None, {inp: x})
            prof = s.end_profiling()
            opt = onnx.load(so.optimized_model_filepath)
            elem = {vi.name: vi.type.tensor_type.elem_type for vi in list(opt.graph.value_info) + list(opt.graph.input) + list(opt.graph.output)}
            elem.update({t.name: t.data_type for t in opt.graph.initializer})
            inits = {t.name for t in opt.graph.initializer}
            ops = collections.Counter()
            for n in opt.graph.node:
                # The element type of its weights where it has some (initializers), else of its input.
                w = next((i for i in n.input[1:2] if i in inits), n.input[0] if n.input else "")
                # Quantized operators take 8-bit tensors (their float inputs are scales).
                t = "int8" if n.op_type.startswith(("QLinear", "QGemm")) else TYPES.get(elem.get(w, 0), "?")
                ops[f"{n.op_type}({t})"] += 1
            with open(prof) as f:
                events = json.load(f)
            per_op = collections.Counter()
            for e in events:
                if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
                    per_op[e["args"].get("op_name", "?")] += e["dur"]
            total = sum(per_op.values()) or 1
            print(f"\n{name}: optimised graph {dict(ops.most_common())}")
            print(f"  run time by operator ({batch} frames x 4 runs): " + ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in per_op.most_common(8)))


if __name__ == "__main__":
    main()
