"""Where a model loses Top-1 in int8: its fp32 ONNX graph quantised whole (``sigmab export --int8``'s settings),
then with one choice changed at a time (activation calibration method, per-tensor weights, one weight layer left
in fp32), each evaluated in onnxruntime on the first ``--images`` test images beside the fp32 graph.

    python -m benchmarks.int8_sensitivity --run benchmarks/weights/mobilenet_v2_cifar_s2-dense
    # writes benchmarks/results/int8_sensitivity_<arch>.json
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import RESULTS, SHARED, git_commit, machine
from sigmab.data import Normalize, load_split
from sigmab.export import OnnxGraphs, export_any
from sigmab.export.quantize import QuantizeConfig, quantize_graph
from sigmab.folders import open_model
from sigmab.inputs import calibration_images
from sigmab.utils.io import atomic_write_json

# name -> (what changes, quantize_graph keyword arguments); the first is export --int8's default
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "default": ("every weight layer int8, per-channel weights, min/max activations (uint8 on x86)", {}),
    "int8-activations": ("activations int8 (signed) instead of the x86 default uint8", {"activations": "int8"}),
    "percentile": ("activations calibrated at the 99.999th percentile", {"method": "percentile"}),
    "entropy": ("activations calibrated by entropy (KL)", {"method": "entropy"}),
    "per-tensor": ("one weight scale per layer instead of per output channel", {"per_channel": False}),
    "float-first": ("the first conv (the stem) left in fp32", {"keep_float": [0]}),
    "float-last-conv": ("the last conv left in fp32", {"keep_float": [-2]}),
    "float-classifier": ("the classifier left in fp32", {"keep_float": [-1]}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a dense training folder (or pruned folder)")
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "cifar10.npz.xz")
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--images", type=int, default=2000, help="test images evaluated (the first N)")
    args = parser.parse_args()
    opened = open_model(args.run)
    if opened.kind == "tree":
        raise SystemExit("a tree has one graph per unit: run this on its dense model or a pruned folder")
    cfg = QuantizeConfig()
    test = load_split(args.dataset, "test", root=str(args.data))
    x = Normalize(opened.meta.mean, opened.meta.std)(test.images[:args.images]).numpy()
    labels = np.asarray(test.labels[:args.images])
    calib = calibration_images(args.dataset, str(args.data), opened.meta, size=cfg.calib_size,
                               seed=cfg.calib_seed).numpy()
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="sigmab-int8-sens-") as tmp:
        fp32 = Path(tmp) / "fp32"
        manifest = export_any(opened.kind, opened.model, opened.meta, fp32, paths=False, conditional=False,
                              source={})
        src = fp32 / manifest["graphs"]["model"]["files"]["onnx"]
        reference = OnnxGraphs(fp32).run("model", x).argmax(1)
        fp32_top1 = 100.0 * float((reference == labels).mean())
        for name, (what, options) in VARIANTS.items():
            dst = Path(tmp) / f"{name}.onnx"
            quantize_graph(src, dst, calib, input_name=manifest["input"], batch_size=cfg.batch_size, **options)
            predicted = _run(dst, x)
            top1 = 100.0 * float((predicted == labels).mean())
            rows[name] = {"change": what, "options": options, "top1": top1, "minus_fp32_pp": round(top1 - fp32_top1, 4),
                          "prediction_agreement": float((predicted == reference).mean())}
            print(f"{name}: {top1:.2f}% ({top1 - fp32_top1:+.2f} pp)", flush=True)
    out = RESULTS / f"int8_sensitivity_{opened.meta.arch}.json"
    atomic_write_json(out, {"benchmark": "int8_sensitivity", "run": str(args.run), "model": opened.meta.arch,
                            "dataset": args.dataset, "images": len(labels), "fp32_top1": fp32_top1,
                            "calib_size": cfg.calib_size, "calib_seed": cfg.calib_seed, "rows": rows,
                            "onnxruntime": __import__("onnxruntime").__version__, "git_commit": git_commit(),
                            "machine": machine()})
    print(f"wrote {out}")


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0].argmax(1)


if __name__ == "__main__":
    main()
