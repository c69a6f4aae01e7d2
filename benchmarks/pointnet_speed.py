"""PointNet++ on 2 cores: the dense forward pass and its point kernels (farthest-point sampling, ball query).

    python -m benchmarks.pointnet_speed     # writes benchmarks/results/pointnet_speed.json

Median of ``--repeats`` timed calls after one warm-up, in one process with ``--threads`` torch
threads. Forward passes run in eval mode under ``no_grad`` on uniform random points in [-1, 1]^3
(the kernels' cost does not depend on the shape). Ball query is also timed at several chunk
sizes: ``chunk_elements`` bounds the distances held at once, so memory stays linear in the points.
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.common import seconds, summarise, write_result
from benchmarks.studies import Result, machine_summary, register_study
from sigmab.eval import profile_model
from sigmab.models import build_model
from sigmab.models.point_ops import DEFAULT_CHUNK_ELEMENTS, ball_query, farthest_point_sample, gather_points

# The Fashion-MNIST point-set classifier of benchmarks/configs/fashion_points.yaml.
FASHION_POINTS = dict(centers=[128, 32], radii=[0.2, 0.4], neighbors=[16, 16], mlps=[[32, 32, 64], [64, 64, 128],
                                                                                        [128, 128, 256]],
                      hidden=[128, 64])


def _median(fn, repeats: int) -> dict:
    fn()
    return summarise([seconds(fn) * 1000 for _ in range(repeats)])


REQUIRED = ("batch_size", "repeats", "threads", "forward", "kernels", "machine", "git_commit")


def pointnet_speed_section(results: list[Result]) -> list[str]:
    lines = ["## PointNet++ on 2 cores: forward pass and point kernels", ""]
    for r in results:
        b = r["batch_size"]
        lines += [f"Eval-mode forward of a batch of {b} random point sets, median of {r['repeats']} after a warm-up, "
                  f"{r['threads']} torch threads.", "",
                  "| model | points | centers | params | MMACs per input | batch time | point sets/s |",
                  "|---|---|---|---|---|---|---|"]
        for f in r["forward"]:
            lines.append(f"| {f['model']} | {f['points']} | {f['centers']} | {f['params']:,} | "
                         f"{f['macs_per_input'] / 1e6:.0f} | {f['ms']['median']:.1f} ms | "
                         f"{f['inputs_per_second']:,.0f} |")
        lines += ["", "Kernels on the same batch: farthest-point sampling of S centers from N points, and ball query "
                  "(K neighbours within radius r) at several chunk sizes, the default in bold. A chunk holds at most "
                  "`chunk_elements` distances; the last column is what one unchunked (B, S, N) distance matrix would "
                  "take.", "",
                  "| N | S | K | r | FPS | ball query (centers per chunk: time, distance memory) | full matrix |",
                  "|---|---|---|---|---|---|---|"]
        for k in r["kernels"]:
            chunks = "; ".join(("**{}**" if c["default"] else "{}").format(
                f"{c['centers_per_chunk']}: {c['ms']['median']:.1f} ms, {c['distance_mib']:.1f} MiB")
                for c in k["ball_query"])
            lines.append(f"| {k['points']} | {k['centers']} | {k['neighbors']} | {k['radius']} | "
                         f"{k['fps_ms']['median']:.1f} ms | {chunks} | {k['full_matrix_mib']:.0f} MiB |")
        lines += ["", f"Machine: {machine_summary(r)}. Source: `{r['_file']}`. Regenerate: `python -m "
                  "benchmarks.pointnet_speed`.", ""]
    return lines


register_study('pointnet_speed', REQUIRED, pointnet_speed_section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    b = args.batch_size
    forward = []
    for name, kwargs, channels, points, classes in [
        ("paper SSG (ModelNet40)", {}, 3, 512, 40),
        ("paper SSG (ModelNet40)", {}, 3, 1024, 40),
        ("Fashion-MNIST points", FASHION_POINTS, 4, 512, 10),
    ]:
        # The paper samples 512 then 128 centers from 1,024 points; from 512 points, half as many.
        extra = {"centers": [256, 64]} if not kwargs and points == 512 else {}
        model = build_model("pointnet2_ssg", num_classes=classes, in_channels=channels, mean=(0.0,) * channels,
                            std=(1.0,) * channels, input_size=(points,), **kwargs, **extra).eval()
        x = torch.rand(b, channels, points, generator=g) * 2 - 1
        profile = profile_model(model, (channels, points))
        with torch.no_grad():
            timing = _median(lambda model=model, x=x: model(x), args.repeats)
        forward.append({"model": name, "points": points,
                        "centers": [level.num_centers for level in model.levels[:-1]],
                        "params": profile.params, "macs_per_input": profile.macs, "ms": timing,
                        "inputs_per_second": b / (timing["median"] / 1000)})
        print(f"{name} N={points}: {timing['median']:.1f} ms per batch of {b}")
    kernels = []
    for n, s, k, r in [(512, 256, 32, 0.2), (1024, 512, 32, 0.2), (1024, 128, 64, 0.4)]:
        xyz = torch.rand(b, 3, n, generator=g) * 2 - 1
        fps = _median(lambda xyz=xyz, s=s: farthest_point_sample(xyz, s), args.repeats)
        centers = gather_points(xyz, farthest_point_sample(xyz, s))
        chunks = []
        for chunk in sorted({b * n * 4, DEFAULT_CHUNK_ELEMENTS, b * n * 64, b * n * s}):
            timing = _median(lambda xyz=xyz, c=centers, chunk=chunk, k=k, r=r: ball_query(xyz, c, r, k,
                                                                                          chunk_elements=chunk),
                             args.repeats)
            chunks.append({"chunk_elements": chunk, "centers_per_chunk": min(s, max(1, chunk // (b * n))),
                           "default": chunk == DEFAULT_CHUNK_ELEMENTS, "ms": timing,
                           "distance_mib": min(chunk, b * n * s) * 4 / 2**20})
        kernels.append({"batch": b, "points": n, "centers": s, "neighbors": k, "radius": r, "fps_ms": fps,
                        "ball_query": chunks, "full_matrix_mib": b * n * s * 4 / 2**20})
        print(f"N={n} S={s}: FPS {fps['median']:.1f} ms, ball query {[c['ms']['median'] for c in chunks]} ms")
    write_result("pointnet_speed", {"benchmark": "pointnet_speed", "batch_size": b, "repeats": args.repeats,
                                    "threads": args.threads, "forward": forward, "kernels": kernels})


if __name__ == "__main__":
    main()
