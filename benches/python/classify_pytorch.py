"""Single-drawing inference latency of the same CNN (doodlecnn-3x3-v1) in PyTorch eager,
for benches/classify.rs: one thread (as Doodlebox's inference thread), eval mode, no_grad,
one pre-rasterized image per call.

Usage: python classify_pytorch.py SIZE CLASSES RUNS
Prints one JSON line: {"p50_ms": ..., "p99_ms": ...}.
"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from train_pytorch import DoodleNet  # noqa: E402


def main():
    size, classes, runs = (int(v) for v in sys.argv[1:4])
    torch.set_num_threads(1)
    net = DoodleNet(classes).eval()
    image = torch.rand(1, 1, size, size)
    latencies = []
    with torch.no_grad():
        for _ in range(50):
            net(image).softmax(-1)
        for _ in range(runs):
            started = time.perf_counter()
            probabilities = net(image).softmax(-1)
            probabilities.tolist()
            latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    print(json.dumps({"p50_ms": latencies[len(latencies) // 2], "p99_ms": latencies[int(len(latencies) * 0.99)]}))


if __name__ == "__main__":
    main()
