"""Kiln's CPU backend beside PyTorch on the CPU: the same workloads, run interleaved, with ratios.

Runs `kiln-bench --backend cpu --json` and `workloads.py` one after the other for every workload,
alternating which goes first from run to run (A/B, B/A, ...), so that a slow spell of a shared
machine falls on both. Prints the medians over the runs and Kiln / PyTorch for training and
inference samples/s and matmul GFLOP/s. The CNN is compared with PyTorch's NCHW and its faster
channels_last layout. Build kiln-bench first; install PyTorch from requirements.txt (CI never does).

    cargo build --release -p kiln-bench
    pip install -r benches/pytorch/requirements.txt
    python benches/pytorch/compare.py [--runs 3] [--quick] [--workload mlp,cnn,embed,...,matmul]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
KILN = os.path.join(ROOT, "target", "release", "kiln-bench")
WORKLOADS = "mlp,cnn,embed,resnet,lstm,transformer,matmul"


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def kiln(workloads, quick):
    cmd = [KILN, "--json", "--backend", "cpu", "--workload", workloads] + (["--quick"] if quick else [])
    device = run(cmd)["devices"][0]
    rows = {
        w["workload"]: (w["train_samples_per_s"]["median"], w["inference_samples_per_s"]["median"])
        for w in device["workloads"]
    }
    return rows, {m["n"]: m["gflops"]["median"] for m in device["matmul"]}, device["device"]


def torch(workloads, quick):
    names = workloads.replace("cnn", "cnn,cnn_cl")
    cmd = [sys.executable, os.path.join(HERE, "workloads.py"), "--workload", names] + (["--quick"] if quick else [])
    report = run(cmd)
    rows = {w["workload"]: (w["train_samples_per_s"], w["inference_samples_per_s"]) for w in report["workloads"]}
    return rows, {m["n"]: m["gflops"] for m in report["matmul"]}, f"PyTorch {report['version']}, {report['threads']} threads"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="kiln-bench's and workloads.py's short windows")
    p.add_argument("--workload", default=WORKLOADS)
    args = p.parse_args()
    if not os.path.exists(KILN):
        sys.exit(f"{KILN} not found: cargo build --release -p kiln-bench")
    k_rows, t_rows, k_mm, t_mm = {}, {}, {}, {}
    for r in range(args.runs):
        for w in args.workload.split(","):
            order = [("kiln", kiln), ("torch", torch)]
            for name, fn in order if r % 2 == 0 else order[::-1]:
                print(f"run {r + 1}/{args.runs}: {name} {w}", file=sys.stderr)
                rows, mm, device = fn(w, args.quick)
                dest_rows, dest_mm = (k_rows, k_mm) if name == "kiln" else (t_rows, t_mm)
                for key, v in rows.items():
                    dest_rows.setdefault(key, []).append(v)
                for n, g in mm.items():
                    dest_mm.setdefault(n, []).append(g)
                if name == "kiln":
                    kiln_device = device
                else:
                    torch_device = device
    med = lambda xs, i: statistics.median(x[i] for x in xs)
    print(f"Kiln {kiln_device} vs {torch_device}; medians of {args.runs} interleaved runs\n")
    print("| workload | Kiln train smp/s | PyTorch train | Kiln / PyTorch | Kiln infer smp/s (b256) | PyTorch infer | Kiln / PyTorch |")
    print("|---|---|---|---|---|---|---|")
    for w, kv in k_rows.items():
        for tw in [w, w + "_cl"]:
            if tw not in t_rows:
                continue
            kt, ki = med(kv, 0), med(kv, 1)
            tt, ti = med(t_rows[tw], 0), med(t_rows[tw], 1)
            label = w + (" (vs channels_last)" if tw.endswith("_cl") else "")
            print(f"| {label} | {kt:,.0f} | {tt:,.0f} | {kt / tt:.2f}× | {ki:,.0f} | {ti:,.0f} | {ki / ti:.2f}× |")
    if k_mm:
        print("\n| matmul n | Kiln GFLOP/s | PyTorch GFLOP/s | Kiln / PyTorch |")
        print("|---|---|---|---|")
        for n, ks in k_mm.items():
            kg, tg = statistics.median(ks), statistics.median(t_mm[n])
            print(f"| {n} | {kg:.1f} | {tg:.1f} | {kg / tg:.2f}× |")


if __name__ == "__main__":
    main()
