"""The tree picture: it draws what a newcomer reads off it, from a report."""

from pathlib import Path

import pytest

from sigmab.plots import tree_plot


def test_the_tree_picture_labels_leaves_with_their_inputs_classes_and_path_params(tmp_path: Path,
                                                                                 monkeypatch) -> None:
    pytest.importorskip("matplotlib")
    texts: list[str] = []
    real = tree_plot.pyplot

    def recording_pyplot():
        plt = real()
        original = plt.Axes.text

        def text(self, x, y, s, *args, **kwargs):
            texts.append(s)
            return original(self, x, y, s, *args, **kwargs)

        monkeypatch.setattr(plt.Axes, "text", text)
        return plt

    monkeypatch.setattr(tree_plot, "pyplot", recording_pyplot)
    report = {"depth": 1, "n_samples": 200, "split": "test", "top1": 80.0, "dense_top1": 85.0,
              "active_params_mean": 700.0, "dense_params": 1000, "active_params_reduction": 0.3,
              "split_points": ["layer3.0"],
              "leaves": [{"leaf": "n0", "share": 0.25, "top1": 90.0, "params": 700, "class_counts": [40, 10, 0]},
                         {"leaf": "n1", "share": 0.75, "top1": None, "params": 710, "class_counts": [0, 30, 120]}]}
    path = tree_plot.plot_tree(report, tmp_path / "tree.png", class_names=["cat", "dog", "ship"])
    assert path.read_bytes()[:4] == b"\x89PNG"
    root, n0, n1 = texts
    assert "split before layer3.0" in root and "top-1" not in root  # no dense accuracy on the backbone
    assert "50 of 200 inputs (25.0%)" in n0 and "mostly cat (80%), dog (20%)" in n0 and "path params 700" in n0
    assert "150 of 200 inputs" in n1 and "top-1 on them -" in n1 and "mostly ship (80%)" in n1
