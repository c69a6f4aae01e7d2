"""Post-training static int8 quantisation of an export folder: onnxruntime's quantiser, QDQ format, per-channel
symmetric int8 weights, int8 activations calibrated (min/max by default, or a histogram percentile or entropy) on
images drawn from the training split.

Each graph is calibrated on what it sees when deployed: the backbone (and a plain model, and each level of a
nested net) on the calibration images; a router on the stream that reaches it; a node on the inputs the fp32
routers send to it, and a path on the images routed to its leaf. A unit that fewer than ``min_routed`` images
reach is calibrated on every image instead (the manifest says which). Routers are quantised like every other
unit; ``sigmab eval`` of the result measures how often they still choose the fp32 leaf.

The single-graph conditional tree (``tree``, ONNX ``If``) is left out of an int8 export: onnxruntime's
quantiser does not enter ``If`` branches, so its nodes would stay fp32 behind an int8 name.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Collection, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sigmab.errors import ConfigError
from sigmab.export.graphs import EXPORT_FORMAT, MANIFEST
from sigmab.export.onnx_runner import OnnxGraphs
from sigmab.models.checkpoint import file_in_folder
from sigmab.routing import walk_all, walk_hard
from sigmab.utils.extras import import_extra
from sigmab.utils.io import atomic_path, atomic_write_json
from sigmab.utils.progress import progress_bar

# Operators whose weights must come out int8: one left in float means the quantiser did not handle it.
WEIGHT_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
NOT_QUANTISED = {"tree": "a single graph with ONNX If branches, which onnxruntime's quantiser does not enter"}


# sigmab's names of onnxruntime's CalibrationMethod members
CALIBRATION_METHODS = {"minmax": "MinMax", "percentile": "Percentile", "entropy": "Entropy"}


@dataclass(frozen=True)
class QuantizeConfig:
    """How an export is quantised: ``calib_size`` training images drawn with ``calib_seed``; units reached by fewer
    than ``min_routed`` of them are calibrated on all of them; ``batch_size`` images per calibration step."""

    calib_size: int = 256
    calib_seed: int = 0
    min_routed: int = 32
    batch_size: int = 32
    method: str = "minmax"  # activation ranges: min/max, or a percentile of the histogram (clips rare outliers)
    activations: str = "auto"  # uint8, int8, or auto (resolved here: see activation_type)
    keep_float: tuple[str, ...] = ()  # layers left in fp32 wherever a graph holds them: "stem", "classifier"

    def __post_init__(self) -> None:
        for name in ("calib_size", "min_routed", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1")
        if self.method not in CALIBRATION_METHODS:
            raise ConfigError(f"calibration method {self.method!r}: choose one of {', '.join(CALIBRATION_METHODS)}")
        if self.activations not in ACTIVATION_TYPES:
            raise ConfigError(f"activation type {self.activations!r}: choose one of {', '.join(ACTIVATION_TYPES)}")
        unknown = sorted(set(self.keep_float) - set(FLOAT_LAYERS))
        if unknown:
            raise ConfigError(f"keep_float: unknown layer(s) {', '.join(unknown)}; choose from "
                              f"{', '.join(FLOAT_LAYERS)}")
        object.__setattr__(self, "keep_float", tuple(dict.fromkeys(self.keep_float)))
        if self.activations == "auto":  # resolved, so the manifest names the type used
            object.__setattr__(self, "activations", activation_type())


ACTIVATION_TYPES = ("auto", "uint8", "int8")
#: Layers an int8 export can leave in fp32 by name: the first weight layer of every graph that reads the model's
#: input (MobileNetV2's stem conv costs 2.35 pp in int8), the last of every graph that writes its logits.
FLOAT_LAYERS = ("stem", "classifier")


def float_positions(name: str, graph: dict[str, Any], manifest: dict[str, Any], keep: Collection[str]
                    ) -> list[int]:
    """Positions among graph ``name``'s weight layers (0 first, -1 last) that ``keep`` leaves in fp32."""
    reads_input = graph["kind"] in ("backbone", "path", "model", "level")
    writes_logits = graph["kind"] in ("path", "model", "level") or (
        graph["kind"] == "node" and name in manifest.get("leaves", []))
    return [0] * ("stem" in keep and reads_input) + [-1] * ("classifier" in keep and writes_logits)


def activation_type() -> str:
    """The activation type whose QDQ groups onnxruntime fuses into integer kernels on this machine.

    On x86, onnxruntime 1.32 fuses every Conv and Add of a CIFAR ResNet into QLinearConv/QLinearAdd with uint8
    activations (U8S8), but only half the convolutions with int8 ones (S8S8): the rest run in float on
    weights dequantised at every call (`python -m benchmarks.int8_graph`). Elsewhere (ARM) int8 is the native
    choice."""
    import platform

    return "uint8" if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686") else "int8"


def needs_reduced_range() -> bool:
    """U8S8 on an x86 CPU without VNNI multiplies with VPMADDUBSW, whose 16-bit sums can saturate; 7-bit weights
    (onnxruntime's ``reduce_range``) avoid it. VNNI CPUs (``avx512_vnni``, ``avx_vnni``) need no reduction."""
    from sigmab.train.precision import cpu_flags

    return not (cpu_flags() & {"avx512_vnni", "avx_vnni"})


def _runner(graphs: OnnxGraphs, inputs: dict[str, list[torch.Tensor]]) -> Callable[[str, torch.Tensor], torch.Tensor]:
    """A walk's ``run(key, h)`` that runs the fp32 graph ``key`` and records each input ``h`` (n, ...) it gets."""

    def run(key: str, h: torch.Tensor) -> torch.Tensor:
        inputs.setdefault(key, []).append(h)
        return torch.from_numpy(graphs.run(key, h.numpy()))
    return run


def calibration_inputs(graphs: OnnxGraphs, images: np.ndarray, *, min_routed: int
                       ) -> tuple[dict[str, np.ndarray], list[str]]:
    """Per graph of the fp32 export ``graphs``, the inputs it is calibrated on (arrays (n, ...)), and the units
    that fell back to every image because fewer than ``min_routed`` were routed to them."""
    manifest = graphs.manifest
    names = [n for n in manifest["graphs"] if n not in NOT_QUANTISED]
    if manifest.get("kind") != "tree":
        return {name: images for name in names}, []
    depth = int(manifest["depth"])
    with torch.no_grad():
        stream = torch.from_numpy(graphs.run("backbone", images))
        routed: dict[str, list[torch.Tensor]] = {}
        _, leaf_ids = walk_hard(stream, depth, _runner(graphs, routed))
        everywhere: dict[str, list[torch.Tensor]] = {}
        walk_all(stream, depth, _runner(graphs, everywhere))
    out: dict[str, np.ndarray] = {"backbone": images}
    fallback = []
    for key, seen in everywhere.items():
        rows = torch.cat(routed.get(key, [seen[0][:0]]))
        if len(rows) < min_routed:
            fallback.append(key)
            rows = torch.cat(seen)
        out[key] = rows.numpy()
    for i, leaf in enumerate(manifest["leaves"]):
        mine = images[(leaf_ids == i).numpy()]
        if len(mine) < min_routed:
            fallback.append(f"path-{leaf}")
            mine = images
        out[f"path-{leaf}"] = mine
    return {name: out[name] for name in names}, sorted(fallback)


def _batches(inputs: np.ndarray, input_name: str, batch_size: int) -> Iterator[dict[str, np.ndarray]]:
    for start in range(0, len(inputs), batch_size):
        yield {input_name: np.ascontiguousarray(inputs[start:start + batch_size], np.float32)}


def weight_bytes(path: str | os.PathLike[str]) -> int:
    """Bytes of every initializer (weights, biases, scales, zero points) of the ONNX file at ``path``, as stored."""
    onnx = import_extra("onnx")
    numpy_helper = import_extra("onnx.numpy_helper")

    model = onnx.load(str(path))
    return int(sum(numpy_helper.to_array(t).nbytes for t in model.graph.initializer))


def float_weight_ops(path: str | os.PathLike[str]) -> list[str]:
    """Weight-bearing nodes (``WEIGHT_OPS``) of the ONNX file at ``path`` whose weight input is still a float
    initializer rather than the output of a ``DequantizeLinear``: ``['Conv node_name', ...]``."""
    onnx = import_extra("onnx")

    model = onnx.load(str(path))
    floats = {t.name for t in model.graph.initializer if t.data_type in (onnx.TensorProto.FLOAT,
                                                                          onnx.TensorProto.FLOAT16,
                                                                          onnx.TensorProto.DOUBLE)}
    return [f"{node.op_type} {node.name or node.output[0]}" for node in model.graph.node
            if node.op_type in WEIGHT_OPS and len(node.input) > 1 and node.input[1] in floats]


class QuantisationError(ConfigError):
    """onnxruntime's quantiser left a weight-bearing operator in float (an operator it does not support)."""


def _weight_nodes(path: Path) -> list[str]:
    """Names of the weight-bearing nodes (``WEIGHT_OPS``) of an ONNX file, in graph order."""
    onnx = import_extra("onnx")

    return [node.name for node in onnx.load(str(path)).graph.node if node.op_type in WEIGHT_OPS]


def quantize_graph(src: Path, dst: Path, inputs: np.ndarray, *, input_name: str, batch_size: int,
                   method: str = "minmax", per_channel: bool = True, keep_float: Collection[int] = (),
                   activations: str = "auto") -> None:
    """Quantise the fp32 ONNX graph ``src`` into ``dst`` (atomically), activation ranges calibrated on ``inputs``
    (n, ...) by ``method`` (a key of :data:`CALIBRATION_METHODS`), activations as ``activations`` (uint8, int8;
    auto: :func:`activation_type`). ``keep_float`` lists weight layers to leave in fp32 by their position among
    the graph's weight-bearing nodes (0: the first conv, -1: the classifier)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = _batches(inputs, input_name, batch_size)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    with tempfile.TemporaryDirectory(prefix="sigmab-quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # shape inference and graph fusions (Conv+BatchNorm...) first, as onnxruntime's quantiser recommends
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        weight_nodes = _weight_nodes(prepared)
        excluded = [weight_nodes[i] for i in keep_float]
        with atomic_path(dst) as out:
            unsigned = (activation_type() if activations == "auto" else activations) == "uint8"
            quantize_static(str(prepared), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                            activation_type=QuantType.QUInt8 if unsigned else QuantType.QInt8,
                            weight_type=QuantType.QInt8, reduce_range=unsigned and needs_reduced_range(),
                            calibrate_method=getattr(CalibrationMethod, CALIBRATION_METHODS[method]),
                            nodes_to_exclude=excluded)
            left = [op for op in float_weight_ops(out) if op.split(" ", 1)[1] not in excluded]
            if left:
                raise QuantisationError(f"{src.name}: onnxruntime's quantiser left {len(left)} operator(s) in float "
                                        f"({', '.join(left[:3])}); int8 export does not support them")


def quantize_export(src: str | os.PathLike[str], out: str | os.PathLike[str], images: np.ndarray,
                    cfg: QuantizeConfig = QuantizeConfig(), *, calibration: dict[str, Any] | None = None,
                    progress: bool = False) -> dict[str, Any]:
    """Quantise every ONNX graph of the fp32 export folder ``src`` (but the conditional tree) into the folder
    ``out``, calibrated on ``images`` (N, C, H, W) preprocessed as the graphs expect. ``calibration`` describes
    where the images came from (dataset, split, seed) for the manifest. Returns the manifest written."""
    graphs = OnnxGraphs(src)
    manifest = graphs.manifest
    if manifest.get("precision", "fp32") != "fp32":
        raise ConfigError(f"{src} is already a {manifest['precision']} export")
    missing = [n for n, g in manifest["graphs"].items() if n not in NOT_QUANTISED and "onnx" not in g["files"]]
    if missing:
        raise ConfigError(f"{src}: no ONNX file for {', '.join(missing)} (exported with --no-onnx?)")
    inputs, fallback = calibration_inputs(graphs, images, min_routed=cfg.min_routed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    quantised = {}
    for name in progress_bar(list(inputs), enabled=progress, desc="int8", unit="graph"):
        graph = manifest["graphs"][name]
        file, source = f"{name}.onnx", file_in_folder(src, graph["files"]["onnx"], manifest=MANIFEST)
        kept = float_positions(name, graph, manifest, cfg.keep_float)
        quantize_graph(source, out / file, inputs[name], input_name=manifest["input"],
                       batch_size=cfg.batch_size, method=cfg.method, activations=cfg.activations, keep_float=kept)
        quantised[name] = {**graph, "files": {"onnx": file}, "weight_bytes": weight_bytes(out / file),
                           "fp32_weight_bytes": weight_bytes(source), "float_layers": float_weight_ops(out / file),
                           "calibration_inputs": len(inputs[name])}
    result = {**manifest, "format": EXPORT_FORMAT, "graphs": quantised, "precision": "int8",
              "quantization": {"tool": "onnxruntime.quantization.quantize_static", "format": "QDQ",
                               "weights": "int8, per channel, symmetric"
                                          + (", 7-bit (reduce_range)" if cfg.activations == "uint8"
                                             and needs_reduced_range() else ""),
                               "activations": f"{cfg.activations}, {cfg.method} calibrated",
                               **asdict(cfg), "calibration": calibration or {"images": len(images)},
                               "all_images_for": fallback, "not_quantised": {
                                   n: why for n, why in NOT_QUANTISED.items() if n in manifest["graphs"]}}}
    atomic_write_json(out / MANIFEST, result)
    return result
