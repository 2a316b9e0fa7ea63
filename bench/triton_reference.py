"""Triton's reference client (tritonclient[grpc], asyncio API) under the same load as
bench/triton-client.ts measures framewire's client with. Spawned by that benchmark.

stdin: one JSON line {"url", "seconds", "warmup"}, then one JSON line per cell
{"model", "datatype", "batch", "concurrency", "transport"}: each cell runs when its line arrives,
so the benchmark can interleave it with framewire's run of the same cell.
stdout: one JSON line per cell: {"requests", "frames", "elapsed", "latencies_ms": [...], "server_ms", "cpu_s"};
server_ms is Triton's mean request time (ModelStatistics success) over the cell, cpu_s this
process's CPU time (all threads, gRPC's included) over the measured window.
"""
import asyncio
import json
import sys
import time

import numpy as np
import tritonclient.grpc.aio as grpcclient
import tritonclient.grpc as grpcsync
import tritonclient.utils.shared_memory as shm

NP = {"UINT8": np.uint8, "FP32": np.float32, "FP16": np.float16}


def frames(batch, datatype):
    x = np.zeros((batch, 224, 224, 3), dtype=NP[datatype])
    x[..., 0] = 255  # red
    return x


def unregister(control, name):
    # Triton refuses ("currently in use") until it has let go of the last request that read the
    # region, which can be just after that request's response arrived: retry for a while.
    for attempt in range(40):
        try:
            control.unregister_system_shared_memory(name)
            return
        except Exception:
            if attempt == 39:
                raise
            time.sleep(0.05)


async def run_cell(url, cell, seconds, warmup):
    client = grpcclient.InferenceServerClient(url)
    control = grpcsync.InferenceServerClient(url)
    data = frames(cell["batch"], cell["datatype"])
    regions = []
    if cell["transport"] == "shm":
        for w in range(cell["concurrency"]):
            name = f"fwbench-ref-{w}"
            handle = shm.create_shared_memory_region(name, f"/{name}", data.nbytes)
            try:
                control.unregister_system_shared_memory(name)
            except Exception:
                pass
            control.register_system_shared_memory(name, f"/{name}", data.nbytes)
            regions.append((name, handle))

    latencies = []
    count = [0]

    async def worker(w, until, record):
        while time.perf_counter() < until:
            inp = grpcclient.InferInput("FRAME", list(data.shape), cell["datatype"])
            if regions:
                name, handle = regions[w]
                shm.set_shared_memory_region(handle, [data])
                inp.set_shared_memory(name, data.nbytes)
            else:
                inp.set_data_from_numpy(data)
            out = grpcclient.InferRequestedOutput("SCORES", class_count=1)
            t0 = time.perf_counter()
            await client.infer(cell["model"], [inp], outputs=[out])
            if record:
                latencies.append((time.perf_counter() - t0) * 1000)
                count[0] += 1

    def success():
        s = control.get_inference_statistics(cell["model"]).model_stats[0].inference_stats.success
        return s.count, s.ns

    try:
        await asyncio.gather(*(worker(w, time.perf_counter() + warmup, False) for w in range(cell["concurrency"])))
        c0, ns0 = success()
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        until = t0 + seconds
        await asyncio.gather(*(worker(w, until, True) for w in range(cell["concurrency"])))
        elapsed = time.perf_counter() - t0
        cpu_s = time.process_time() - cpu0
        c1, ns1 = success()
    finally:
        for name, handle in regions:
            unregister(control, name)
            shm.destroy_shared_memory_region(handle)
        await client.close()
        control.close()
    server_ms = (ns1 - ns0) / (c1 - c0) / 1e6 if c1 > c0 else None
    return {"requests": count[0], "frames": count[0] * cell["batch"], "elapsed": elapsed, "latencies_ms": latencies, "server_ms": server_ms, "cpu_s": cpu_s}


async def main():
    cfg = json.loads(sys.stdin.readline())
    for line in sys.stdin:
        if not line.strip():
            continue
        res = await run_cell(cfg["url"], json.loads(line), cfg["seconds"], cfg["warmup"])
        print(json.dumps(res), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
