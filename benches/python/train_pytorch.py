"""The same CNN as src/ml/net.rs (doodlecnn-3x3-v1), trained in PyTorch eager on the same
pre-rasterized images, batch size, optimiser and thread count, for benches/train_vs_pytorch.rs.

Usage: python train_pytorch.py PIXELS LABELS SIZE CLASSES EPOCHS BATCH THREADS
Prints one JSON line: {"samples_per_sec": [per epoch...]}.
"""
import json
import sys
import time

import torch
from torch import nn


class DoodleNet(nn.Module):
    def __init__(self, classes):
        super().__init__()
        layers, channels = [], 1
        for out in (16, 32, 64):
            layers += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(), nn.MaxPool2d(2)]
            channels = out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(3), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(64 * 9, 128), nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, classes))

    def forward(self, x):
        return self.head(self.features(x))


def main():
    pixels_path, labels_path, size, classes, epochs, batch, threads = sys.argv[1:8]
    size, classes, epochs, batch, threads = int(size), int(classes), int(epochs), int(batch), int(threads)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    with open(pixels_path, "rb") as f:
        xs = torch.frombuffer(bytearray(f.read()), dtype=torch.float32).view(-1, 1, size, size)
    with open(labels_path, "rb") as f:
        ys = torch.frombuffer(bytearray(f.read()), dtype=torch.int64)
    net = DoodleNet(classes)
    optimiser = torch.optim.Adam(net.parameters(), lr=2e-3)
    net.train()
    rates = []
    for _ in range(epochs):
        order = torch.randperm(len(ys))
        started, seen, correct, loss_sum = time.perf_counter(), 0, 0, 0.0
        for start in range(0, len(ys), batch):
            index = order[start:start + batch]
            x, y = xs[index], ys[index]
            logits = net(x)
            loss = nn.functional.cross_entropy(logits, y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            # The same per-step bookkeeping as the Rust loop: loss and accuracy read back.
            loss_sum += loss.item() * len(y)
            correct += int((logits.argmax(-1) == y).sum())
            seen += len(y)
        rates.append(seen / (time.perf_counter() - started))
    print(json.dumps({"samples_per_sec": rates}))


if __name__ == "__main__":
    main()
