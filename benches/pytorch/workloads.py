"""PyTorch counterparts of kiln-bench's workloads, timed the way kiln-bench times them.

Each workload is the same model, batch, loss and optimizer as `crates/kiln-bench/src/workloads.rs`
(Adam with Keras' defaults: lr 1e-3, eps 1e-7), trained on synthetic data of the same shapes:
five 1-second windows of whole epochs over shuffled in-memory data after one warm-up epoch
(`--quick`: two 0.2-second windows), then `predict`-style inference at batch 256 under
`torch.inference_mode()`. The CNN runs twice: NCHW (`cnn`) and channels_last (`cnn_cl`), PyTorch's
faster CPU layout for convolutions. Prints one JSON object; `compare.py` runs it beside kiln-bench.

    python benches/pytorch/workloads.py [--quick] [--workload mlp,cnn,cnn_cl,embed,resnet,lstm,transformer,matmul]
"""

import argparse
import json
import math
import os
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

INFER_BATCH = 256


class Residual(nn.Module):
    """The residual CNN of examples/residual_cnn.rs (BN: Keras momentum 0.99 = torch 0.01, eps 1e-3)."""

    def __init__(self):
        super().__init__()

        def conv_bn(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01))

        self.c1, self.c2, self.c3, self.c4 = conv_bn(1, 32), conv_bn(32, 32), conv_bn(32, 32), conv_bn(32, 64)
        self.out = nn.Linear(64, 10)

    def forward(self, x):
        h = F.relu(self.c1(x))
        r = self.c3(F.relu(self.c2(h)))
        h = F.max_pool2d(F.relu(h + r), 2)
        h = F.relu(self.c4(h))
        return self.out(h.mean(dim=(2, 3)))


class Attention(nn.Module):
    """Keras' MultiHeadAttention(num_heads=2, key_dim=16) on 16 features: each head projects to 16,
    so q/k/v are 16 -> 32 and the output 32 -> 16 (torch's own module would give heads of 8)."""

    def __init__(self, dim=16, heads=2, key_dim=16, dropout=0.1):
        super().__init__()
        self.heads, self.key_dim, self.dropout = heads, key_dim, dropout
        self.q, self.k, self.v = (nn.Linear(dim, heads * key_dim) for _ in range(3))
        self.o = nn.Linear(heads * key_dim, dim)

    def forward(self, x):
        b, t, _ = x.shape
        split = lambda p: p(x).view(b, t, self.heads, self.key_dim).transpose(1, 2)
        a = F.scaled_dot_product_attention(
            split(self.q), split(self.k), split(self.v), dropout_p=self.dropout if self.training else 0.0
        )
        return self.o(a.transpose(1, 2).reshape(b, t, self.heads * self.key_dim))


class Encoder(nn.Module):
    """One post-norm block of examples/transformer_timeseries.rs."""

    def __init__(self):
        super().__init__()
        self.attention, self.drop = Attention(), nn.Dropout(0.1)
        self.norm1, self.norm2 = nn.LayerNorm(16, eps=1e-6), nn.LayerNorm(16, eps=1e-6)
        self.ff1, self.ff2 = nn.Linear(16, 8), nn.Linear(8, 16)  # Conv1D(k=1) is a per-step Dense

    def forward(self, x):
        h = self.norm1(x + self.drop(self.attention(x)))
        return self.norm2(h + self.ff2(F.relu(self.ff1(h))))


class Transformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp, self.blocks = nn.Linear(1, 16), nn.Sequential(Encoder(), Encoder())
        self.head = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 2))

    def forward(self, x):
        return self.head(self.blocks(self.inp(x)).mean(dim=1))


class LastStep(nn.Module):
    """LSTM(64) -> Dense(4): the last step's output feeds the classifier, as Keras' default."""

    def __init__(self):
        super().__init__()
        self.lstm, self.out = nn.LSTM(6, 64, batch_first=True), nn.Linear(64, 4)

    def forward(self, x):
        return self.out(self.lstm(x)[0][:, -1])


class MeanEmbed(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed, self.out = nn.Embedding(1000, 64), nn.Linear(64, 5)

    def forward(self, x):
        return self.out(self.embed(x).mean(dim=1))


def cnn():
    return nn.Sequential(
        nn.Conv2d(3, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 14 * 14, 128), nn.ReLU(), nn.Linear(128, 5),
    )


def workload(name):
    """(model, batch, loss on logits, data(n) -> (x, y), memory format)."""
    g = torch.Generator().manual_seed(11)
    sparse = lambda classes: lambda n: torch.randint(0, classes, (n,), generator=g)
    binary = lambda n: torch.randint(0, 2, (n, 5), generator=g).float()
    uniform = lambda *shape: lambda n: torch.rand((n, *shape), generator=g)
    normal = lambda *shape: lambda n: torch.randn((n, *shape), generator=g)
    tokens = lambda n: torch.randint(0, 1000, (n, 20), generator=g)
    ce, bce = F.cross_entropy, F.binary_cross_entropy_with_logits
    nn_mlp = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    table = {
        "mlp": lambda: (nn_mlp, 128, ce, uniform(784), sparse(10), None),
        "cnn": lambda: (cnn(), 32, bce, uniform(3, 64, 64), binary, None),
        "cnn_cl": lambda: (cnn(), 32, bce, uniform(3, 64, 64), binary, torch.channels_last),
        "embed": lambda: (MeanEmbed(), 32, bce, tokens, binary, None),
        "resnet": lambda: (Residual(), 32, ce, uniform(1, 28, 28), sparse(10), None),
        "lstm": lambda: (LastStep(), 16, ce, normal(100, 6), sparse(4), None),
        "transformer": lambda: (Transformer(), 16, ce, normal(24, 1), sparse(2), None),
    }
    return table[name]()


def train(name, windows, window_seconds):
    model, batch, loss_fn, xs, ys, fmt = workload(name)
    if fmt is not None:
        model = model.to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)

    def data(n):
        x = xs(n)
        return (x.contiguous(memory_format=fmt) if fmt is not None else x), ys(n)

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    model.train()
    x1, y1 = data(batch)
    step(x1, y1)
    t = time.perf_counter()
    for _ in range(2):
        step(x1, y1)
    step_seconds = (time.perf_counter() - t) / 2
    steps = min(max(math.ceil(window_seconds / step_seconds), 1), 500)
    x, y = data(steps * batch)

    def epoch():
        order = torch.randperm(steps * batch)
        t = time.perf_counter()
        for i in range(steps):
            idx = order[i * batch:(i + 1) * batch]
            step(x[idx], y[idx])
        return steps * batch / (time.perf_counter() - t)

    epoch()  # warm-up, as kiln-bench's
    rates = [epoch() for _ in range(windows)]

    model.eval()

    def predict():
        t = time.perf_counter()
        with torch.inference_mode():
            for i in range(0, len(x), INFER_BATCH):
                model(x[i:i + INFER_BATCH])
        return len(x) / (time.perf_counter() - t)

    predict()
    inference = [predict() for _ in range(min(windows, 3))]
    return {
        "workload": name,
        "batch": batch,
        "train_samples_per_s": statistics.median(rates),
        "inference_samples_per_s": statistics.median(inference),
    }


def matmul(sizes, windows):
    out = []
    for n in sizes:
        a = (torch.arange(n * n) % 97).float().sub(48).div(97).view(n, n)
        b = a.clone()
        torch.mm(a, b)
        reps = max(1, math.ceil(2e9 / (2 * n**3)))
        rates = []
        for _ in range(windows):
            t = time.perf_counter()
            for _ in range(reps):
                torch.mm(a, b)
            rates.append(2 * n**3 * reps / (time.perf_counter() - t) / 1e9)
        out.append({"n": n, "gflops": statistics.median(rates)})
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--workload", default="mlp,cnn,cnn_cl,embed,resnet,lstm,transformer,matmul")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    windows, seconds, sizes = (2, 0.2, [256, 512]) if args.quick else (5, 1.0, [256, 512, 1024, 2048])
    report = {"backend": "pytorch", "version": torch.__version__, "threads": torch.get_num_threads(), "workloads": [], "matmul": []}
    for name in args.workload.split(","):
        if name == "matmul":
            report["matmul"] = matmul(sizes, windows)
        else:
            report["workloads"].append(train(name, windows, seconds))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
