"""Vision benchmark: accuracy of fine-tuning vs from scratch vs a linear probe on the same budget, and train and
inference throughput (images/s, batch 32, 224x224) of fine-tuning against the frozen-backbone linear probe.

    .venv/bin/python benchmarks/bench_vision.py --threads 2 --out build/bench_vision.json

Runs on CPU, or on CUDA when available (`--device auto`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from slipway.vision.data import load_image_folder, make_synthetic_image_folder, stratified_split
from slipway.vision.evaluate import compare_strategies
from slipway.vision.export import export_torchscript
from slipway.vision.model import build_classifier, resolve_device, set_train_mode
from slipway.vision.train import TrainConfig, seed_everything


def accuracy_comparison(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as work:
        root = make_synthetic_image_folder(work, n_per_class=args.per_class, image_size=args.acc_size, seed=args.seed)
        data = load_image_folder(root, image_size=args.acc_size)
    train_idx, val_idx = stratified_split(data.labels, 0.3, args.seed)
    config = TrainConfig(
        epochs=args.epochs, batch_size=32, seed=args.seed, device=args.device, trainable_blocks=2, patience=args.epochs
    )
    started = time.perf_counter()
    result = compare_strategies(data.subset(train_idx), data.subset(val_idx), config, progress=False)
    return {
        "images": {"train": len(train_idx), "val": len(val_idx), "classes": data.classes, "size": args.acc_size},
        "epochs": args.epochs,
        "strategies": result.table(),
        "seconds": time.perf_counter() - started,
    }


def throughput(args: argparse.Namespace) -> dict[str, Any]:
    """Images/s of one training step and one inference batch per strategy. The strategies take turns batch by
    batch, so a change in machine load hits all of them alike; the median of `--steps` batches is reported."""
    device = resolve_device(args.device)
    size, batch = 224, 32
    out: dict[str, Any] = {"device": str(device), "batch": batch, "size": size}
    generator = seed_everything(args.seed)
    x = torch.rand(batch, 3, size, size, generator=generator).to(device)
    y = torch.randint(0, 3, (batch,), generator=generator).to(device)
    x01 = (x - x.min()) / (x.max() - x.min())  # the exported model takes [0, 1] pixels
    strategies = ("finetune", "linear_probe")  # the peer: same network, frozen backbone
    models = {s: build_classifier(3, image_size=size, strategy=s).to(device) for s in strategies}  # type: ignore[arg-type]
    optimizers = {
        s: torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-3) for s, m in models.items()
    }
    scripted: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as work:
        for s, m in models.items():
            path = export_torchscript(m.eval().cpu(), ["a", "b", "c"], size, Path(work) / s).model_path
            scripted[s] = torch.jit.load(str(path), map_location=device).eval()
            models[s] = m.to(device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    train_times: dict[str, list[float]] = {s: [] for s in strategies}
    infer_times: dict[str, list[float]] = {s: [] for s in strategies}
    # CPU seconds of this process too: on a shared machine wall time also counts other processes' turns.
    train_cpu: dict[str, list[float]] = {s: [] for s in strategies}
    infer_cpu: dict[str, list[float]] = {s: [] for s in strategies}
    for step in range(args.steps + 2):  # two warm-up rounds (TorchScript optimises on its first calls)
        for s in strategies:
            model, optimizer = models[s], optimizers[s]
            set_train_mode(model)
            start, cpu = time.perf_counter(), time.process_time()
            optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
            sync()
            elapsed_train, cpu_train = time.perf_counter() - start, time.process_time() - cpu
            start, cpu = time.perf_counter(), time.process_time()
            with torch.no_grad():
                scripted[s](x01)
            sync()
            elapsed_infer, cpu_infer = time.perf_counter() - start, time.process_time() - cpu
            if step >= 2:
                train_times[s].append(elapsed_train)
                infer_times[s].append(elapsed_infer)
                train_cpu[s].append(cpu_train)
                infer_cpu[s].append(cpu_infer)
    for s in strategies:
        out[s] = {
            "train_images_per_s": batch / statistics.median(train_times[s]),
            "inference_images_per_s": batch / statistics.median(infer_times[s]),
            "train_images_per_cpu_s": batch / statistics.median(train_cpu[s]),
            "inference_images_per_cpu_s": batch / statistics.median(infer_cpu[s]),
            "train_step_s": train_times[s],
            "inference_batch_s": infer_times[s],
        }
        print(f"{s}: train {out[s]['train_images_per_s']:.1f} img/s, "
              f"inference {out[s]['inference_images_per_s']:.1f} img/s", flush=True)  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--per-class", type=int, default=40)
    parser.add_argument("--acc-size", type=int, default=64, help="image size of the accuracy comparison")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5, help="timed batches per throughput figure")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=Path("build/bench_vision.json"))
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    report: dict[str, Any] = {
        "torch": torch.__version__,
        "threads": args.threads,
        "machine": platform.processor() or platform.machine(),
    }
    if not args.skip_accuracy:
        report["accuracy"] = accuracy_comparison(args)
        for name, figures in report["accuracy"]["strategies"].items():
            print(f"{name}: val accuracy {figures['accuracy']:.3f}, macro F1 {figures['f1_macro']:.3f}, "
                  f"train {figures['train_seconds']:.1f} s", flush=True)  # fmt: skip
    report["load_average_before"] = os.getloadavg()
    report["throughput"] = throughput(args)
    report["load_average_after"] = os.getloadavg()
    ft, lp = report["throughput"]["finetune"], report["throughput"]["linear_probe"]
    report["ratios"] = {
        "train_finetune_over_linear_probe": ft["train_images_per_s"] / lp["train_images_per_s"],
        "inference_finetune_over_linear_probe": ft["inference_images_per_s"] / lp["inference_images_per_s"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report["ratios"]), f"-> {args.out}")


if __name__ == "__main__":
    main()
