"""Triton Python-backend model that runs an ONNX graph with onnxruntime.

Shared by every CPU model in this repository (each model folder holds a copy made by
scripts/models/build.py, since Triton loads <model>/<version>/model.py). The config's
parameters name the ONNX file and the preprocessing to apply to UINT8 RGB frames.
"""
import json
import os
import time

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

# Per-channel means in BGR order, as the open_nsfw reference preprocessing uses.
_BGR_MEAN = np.array([104.0, 117.0, 123.0], dtype=np.float32)


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        options = ort.SessionOptions()
        # Two cores on the reference machine: keep onnxruntime from oversubscribing them.
        options.intra_op_num_threads = int(params.get("intra_op_threads", "2"))
        options.inter_op_num_threads = 1
        # onnxruntime's worker threads spin after each run by default: with the decoders sharing
        # the two cores, that spinning was most of Triton's CPU per frame (measured in bench/pipeline.ts).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            os.path.join(version_dir, params["onnx_file"]), options, providers=["CPUExecutionProvider"]
        )
        self.onnx_input = self.session.get_inputs()[0].name
        self.onnx_output = self.session.get_outputs()[0].name
        self.preprocess = params.get("preprocess", "none")
        # Artificial cost per execution and per frame (slow_probe only), to test deadline scheduling.
        self.delay_s = float(params.get("delay_ms", "0")) / 1000.0
        self.delay_per_frame_s = float(params.get("delay_per_frame_ms", "0")) / 1000.0
        self.input_name = config["input"][0]["name"]
        self.output_name = config["output"][0]["name"]

    def execute(self, requests):
        # Dynamic batching hands us several requests: run them as one onnxruntime batch.
        arrays = [pb_utils.get_input_tensor_by_name(r, self.input_name).as_numpy() for r in requests]
        sizes = [a.shape[0] for a in arrays]
        batch = arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=0)
        if self.preprocess == "bgr_mean_104_117_123":
            batch = batch[..., ::-1].astype(np.float32) - _BGR_MEAN
        scores = self.session.run([self.onnx_output], {self.onnx_input: batch})[0].astype(np.float32)
        if self.delay_s or self.delay_per_frame_s:
            time.sleep(self.delay_s + self.delay_per_frame_s * batch.shape[0])
        responses = []
        start = 0
        for size in sizes:
            out = pb_utils.Tensor(self.output_name, scores[start : start + size])
            responses.append(pb_utils.InferenceResponse(output_tensors=[out]))
            start += size
        return responses
