"""The CIFAR-100 study's section: the verdict compares like with like, and route consistency has a chance level."""

from benchmarks.c100_report import c100_section, route_consistency, verdicts


def _run(method: str, run_id: str, seed: int, top1: float, active: float = 110_000, epochs: int = 4) -> dict:
    leaves = [{"leaf": "n0", "share": 0.5, "class_counts": [50, 0, 30, 20]},
              {"leaf": "n1", "share": 0.5, "class_counts": [0, 50, 20, 30]}]
    return {"model": "resnet20", "dataset": "cifar100", "method": method, "run_id": run_id, "seed": seed,
            "top1": top1, "val_top1": top1 + 1, "active_params_mean": active, "dense_params": 278_324,
            "stored_params": 300_000 if method == "sigmab" else int(active), "active_macs_mean": 2.5e7,
            "dense_macs": 4.08e7, "finetune_epochs": epochs, "dense_top1": 68.83, "_file": f"{run_id}-s{seed}.json",
            "config": {"finetune": {"amp": "bf16"}}, "leaves": leaves,
            "diagnosis": {"top1": top1, "oracle_top1": top1 + 8,
                          "leaves": [{"top1_all": top1 - 3}, {"top1_all": top1 - 2}]}}


def test_route_consistency_against_its_chance_level() -> None:
    leaves = _run("sigmab", "t", 0, 60.0)["leaves"]
    observed, chance = route_consistency(leaves)  # classes 0, 1: all on one leaf; 2: 30 of 50; 3: 30 of 50
    assert observed == (50 + 50 + 30 + 30) / 200 and chance == 0.5
    observed_super, _ = route_consistency(leaves, [0, 0, 1, 1])  # superclass 0 splits 50/50
    assert observed_super == (50 + 50) / 200


def test_the_verdict_takes_the_best_static_arm_at_a_matching_cut_and_epochs() -> None:
    runs = [_run("sigmab", "tree", s, t) for s, t in ((0, 60.0), (1, 60.4))]
    runs += [_run("fpgm", "fpgm", s, t) for s, t in ((0, 59.0), (1, 59.2))]
    runs += [_run("activation", "shape", s, t) for s, t in ((0, 59.6), (1, 59.8))]
    runs += [_run("l1", "l1-far", 0, 65.0, active=60_000)]  # another cut: not a rival
    runs += [_run("l1", "l1-long", 0, 66.0, epochs=8)]  # more epochs: not a rival
    runs += [{**_run("l1", "l1-fp32", 0, 67.0), "config": {"finetune": {"amp": "off"}}}]  # fp32: not a rival
    (v,) = verdicts(runs)
    assert v["best_static"] == "shape" and round(v["gain_pp"], 2) == 0.5 and not v["met"]
    text = "\n".join(c100_section(runs))
    assert "**+0.50 pp**" in text and "Target +1.0 pp: **not met**" in text
    assert "| resnet20 | tree | SigmaB tree | 0 | 60.00% |" in text


def test_a_gain_of_a_single_seed_never_meets_the_target() -> None:
    runs = [_run("sigmab", "tree", 0, 62.0), _run("fpgm", "fpgm", 0, 59.0), _run("fpgm", "fpgm", 1, 59.0)]
    (v,) = verdicts(runs)
    assert v["gain_pp"] == 3.0 and not v["met"]
    assert "Target +1.0 pp: not decided (the target is a mean of 2 seeds" in "\n".join(c100_section(runs))


def test_a_verdict_one_seed_short_says_what_the_missing_seed_must_score() -> None:
    from benchmarks.c100_report import second_seed_bound

    runs = [_run("sigmab", "tree", s, t) for s, t in ((0, 63.4), (1, 64.0))]  # mean 63.7: static must reach 62.7
    runs += [_run("activation", "shape", 0, 63.4), _run("fpgm", "fpgm", 0, 62.0), _run("fpgm", "fpgm", 1, 62.6)]
    (v,) = verdicts(runs)
    bound = second_seed_bound(v)
    assert bound["side"] == "static" and bound["possible"] and round(bound["bound"], 2) == 62.0
    text = "\n".join(c100_section(runs))
    assert "`shape`'s second seed must score at most 62.00% (-1.40 pp from its first)" in text
    assert "the widest gap between two seeds of any setting so far is 0.60 pp" in text

    runs[-1] = _run("fpgm", "fpgm", 1, 63.6)  # FPGM's mean 62.8 already lies above 62.7
    (v,) = verdicts(runs)
    assert not second_seed_bound(v)["possible"]
    assert "the target cannot be met" in "\n".join(c100_section(runs))

    tree_short = [_run("sigmab", "tree", 0, 61.0)] + [_run("fpgm", "fpgm", s, 60.0) for s in (0, 1)]
    (v,) = verdicts(tree_short)
    assert second_seed_bound(v) == {"side": "tree", "run": "tree", "bound": 61.0, "first": 61.0,
                                    "at_most": False, "possible": True}
    both_short = [_run("sigmab", "tree", 0, 61.0), _run("fpgm", "fpgm", 0, 60.0)]
    assert second_seed_bound(verdicts(both_short)[0]) is None
    no_shape = [_run("sigmab", "tree", s, 63.0) for s in (0, 1)] + [_run("fpgm", "fpgm", 0, 61.0)]
    assert "must score" not in "\n".join(c100_section(no_shape))  # not decided for want of a shape control


def test_the_split_from_prune_runs_report_their_mean_gain() -> None:
    from benchmarks.c100_report import c100_specialise_section

    def run(seed: int, tree: float, static: float) -> dict:
        return {"run_id": f"split-s{seed}", "config": {"static": {"seed": seed}}, "static_top1": 55.0,
                "static_continued_top1": static, "tree_top1": tree, "tree_minus_static_pp": tree - static,
                "best_single_leaf_top1": 55.5, "specialisation_gain_pp": tree - 55.5, "leaf_disagreement": 28.0,
                "oracle_top1": 62.0, "active_params_mean": 110_930, "static_params": 110_864,
                "stored_params": 196_166, "_file": f"split-s{seed}.json"}

    text = "\n".join(c100_specialise_section([run(0, 57.7, 57.2), run(1, 57.3, 57.2)]))
    assert "| `split-s1` | 1 | 55.00% | 57.20% | **57.30%** | +0.10 pp |" in text
    assert "**+0.30 ± 0.28 pp** over 2 seed(s)" in text


def test_the_front_keeps_only_points_no_other_point_beats() -> None:
    from benchmarks.c100_report import upper_front

    points = [(40.0, 66.0), (60.0, 62.0), (60.0, 61.0), (58.0, 60.0), (80.0, 50.0), (41.0, 66.0)]
    assert upper_front(points) == [(41.0, 66.0), (60.0, 62.0), (80.0, 50.0)]


def test_cut_at_top1_interpolates_and_never_extrapolates() -> None:
    from benchmarks.c100_report import cut_at_top1

    front = [(40.0, 66.0), (60.0, 62.0), (80.0, 50.0)]
    assert cut_at_top1(front, 64.0) == 50.0 and cut_at_top1(front, 56.0) == 70.0
    assert cut_at_top1(front, 62.0) == 60.0
    assert cut_at_top1(front, 67.0) is None and cut_at_top1(front, 49.0) is None


def test_the_extra_cut_compares_the_tree_with_the_static_front_of_its_epochs() -> None:
    from benchmarks.c100_report import extra_cuts

    dense = 278_324
    runs = [_run("fpgm", "fpgm-40", 0, 66.0, active=dense * 0.6), _run("fpgm", "fpgm-80", 0, 50.0, active=dense * 0.2)]
    runs += [_run("activation", "shape-60", 0, 58.0, active=dense * 0.4)]
    runs += [_run("l1", "l1-long", 0, 70.0, active=dense * 0.3, epochs=8)]  # other epochs: not on the front
    runs += [_run("sigmab", "tree-70", s, t, active=dense * 0.3) for s, t in ((0, 57.5), (1, 58.5))]
    (e,) = extra_cuts(runs)  # front (40, 66) (60, 58) (80, 50): 58% is reached at -60%; the tree cuts 70%
    assert round(e["static_cut"], 6) == 60.0 and round(e["extra_cut_pp"], 6) == 10.0
    text = "\n".join(c100_section(runs))
    assert "| resnet20 | tree-70 | -70.0% | 58.00% | -60.0% | **+10.0 pp** |" in text


def test_precision_parity_pairs_each_fp32_run_with_its_bf16_twin_of_the_same_seed() -> None:
    from benchmarks.c100_report import precision_parity

    def fp32(seed: int, top1: float) -> dict:
        return {**_run("fpgm", "fpgm-fp32", seed, top1), "config": {"finetune": {"amp": "off"}}}

    runs = [_run("fpgm", "fpgm", 0, 56.0), _run("fpgm", "fpgm", 1, 55.0), fp32(0, 55.5)]
    runs += [{**_run("l1", "l1-fp32", 0, 50.0), "config": {"finetune": {"amp": "off"}}}]  # no bf16 twin: no row
    (row,) = precision_parity(runs)
    assert row["setting"] == "fpgm" and row["paired_seeds"] == [0] and row["bf16_minus_fp32_pp"] == 0.5
    assert "not decided (1 of 2 seeds)" in "\n".join(c100_section(runs))
    runs.append(fp32(1, 55.9))  # bf16 - fp32: +0.5 and -0.9: bf16 loses 0.2 pp on average
    (row,) = precision_parity(runs)
    assert round(row["bf16_minus_fp32_pp"], 2) == -0.2
    row_text = "| -0.20 pp (2) | 0.71 pp | not recorded / not recorded | bf16 loses 0.20 pp, within 0.3 pp: bf16 stays"
    assert row_text in "\n".join(c100_section(runs))
    runs[-1] = fp32(1, 56.5)  # -1.5 on seed 1: bf16 loses 0.5 pp
    assert "bf16 loses 0.50 pp: **over 0.3 pp**" in "\n".join(c100_section(runs))
    runs[-1] = fp32(1, 54.0)  # bf16 ahead on both seeds
    assert "bf16 loses nothing: bf16 stays" in "\n".join(c100_section(runs))


def test_a_tree_without_a_shape_control_at_its_setting_is_not_decided() -> None:
    """The fp32 twins join the study, but their static set lacks a shape control: no verdict may be met there."""
    runs = [_run("sigmab", "tree", s, 60.0) for s in (0, 1)] + [_run("activation", "shape", s, 60.5) for s in (0, 1)]
    runs += [{**_run(m, f"{arm}-fp32", s, 58.0 if m == "fpgm" else 61.0), "config": {"finetune": {"amp": "off"}}}
             for m, arm in (("sigmab", "tree"), ("fpgm", "fpgm")) for s in (0, 1)]
    by_tree = {v["tree"]: v for v in verdicts(runs)}
    assert by_tree["tree-fp32"]["best_static"] == "fpgm-fp32" and by_tree["tree-fp32"]["gain_pp"] == 3.0
    assert not by_tree["tree-fp32"]["met"] and by_tree["tree"]["shape_control"]
    text = "\n".join(c100_section(runs))
    assert "resnet20 (fp32): tree `tree-fp32` 61.00% (2 seeds)" in text
    assert "**+3.00 pp**; mean seed s.d. 0.00 pp. Target +1.0 pp: not decided (no shape control" in text
    assert "resnet20 (bf16): tree `tree` 60.00%" in text
    assert "| resnet20 | tree-fp32 | SigmaB tree | fp32 | 2 | 61.00 ± 0.00% |" in text


def test_the_plot_draws_one_panel_per_model_and_precision(tmp_path) -> None:
    from benchmarks.c100_report import write_c100_plot

    runs = [_run("sigmab", "tree", 0, 60.0), _run("fpgm", "fpgm", 0, 59.0)]
    runs += [{**_run("fpgm", "fpgm-fp32", 0, 58.0), "config": {"finetune": {"amp": "off"}}}]
    write_c100_plot(runs, tmp_path)
    assert (tmp_path / "c100_pareto.png").stat().st_size > 10_000


def _c10(run: dict) -> dict:
    return {**run, "model": "mobilenet_v2_cifar", "dataset": "cifar10", "dense_params": 700_490,
            "active_params_mean": 251_800, "config": {"finetune": {"amp": "off"}},
            "diagnosis": {**run["diagnosis"], "disagreement": 55.5}}


def test_the_lead_section_judges_a_cifar10_grid_like_the_cifar100_study() -> None:
    from benchmarks.c100_report import lead_section

    runs = [_c10(_run("sigmab", "mv2-tree", s, t)) for s, t in ((0, 84.8), (1, 84.4))]
    runs += [_c10(_run("fpgm", "mv2-fpgm", s, t)) for s, t in ((0, 83.5), (1, 83.3))]
    runs += [_c10(_run("activation", "mv2-shape", s, t)) for s, t in ((0, 84.0), (1, 84.2))]
    text = "\n".join(lead_section(runs))
    assert text.startswith("## CIFAR-10 mobilenet_v2_cifar: the lead, with its shape control")
    assert "tree `mv2-tree` 84.60% (2 seeds) against the best static arm `mv2-shape` 84.10% (2 seeds): " \
           "**+0.50 pp**" in text and "Target +1.0 pp: **not met**" in text
    assert "| mobilenet_v2_cifar | mv2-tree | 0 | 84.80% | 82.80% | +2.00 pp | 55.5% |" in text
    # best single leaf: 82.80 and 82.40 (seed means 82.60) against the shape control's 84.10: -1.50; routed +2.00
    assert "- mobilenet_v2_cifar, `mv2-tree`: +0.50 pp = -1.50 pp +2.00 pp." in text
    assert "superclass" not in text  # CIFAR-10 has none


def test_only_models_with_a_shape_control_are_lead_runs() -> None:
    from benchmarks.grid_report import lead_runs

    mv2 = [_c10(_run(m, m, 0, 80.0)) for m in ("sigmab", "activation")]
    r20 = [{**_run(m, m, 0, 80.0), "dataset": "cifar10"} for m in ("sigmab", "fpgm")]
    assert lead_runs(mv2 + r20) == mv2


def test_the_decomposition_plot_draws_both_terms_only_for_trees_with_a_diagnosis(tmp_path) -> None:
    from benchmarks.c100_report import DECOMPOSITION_PLOT, decomposition, write_decomposition_plot

    runs = [_run("sigmab", "tree", s, t) for s, t in ((0, 60.0), (1, 60.4))]
    runs += [_run("sigmab", "tree-deep", 0, 40.0, active=55_000), _run("activation", "shape-deep", 0, 41.0,
                                                                      active=55_000)]
    runs += [_run("activation", "shape", s, 59.7) for s in (0, 1)]
    rows = {d["tree"]: d for d in decomposition(runs)}
    # each run's best leaf is its Top-1 - 2 (58.0, 58.4): -1.5 pp against the shape control's 59.7
    assert round(rows["tree"]["leaf_minus_static_pp"], 2) == -1.5 and round(rows["tree"]["specialisation_pp"], 2) == 2.0
    assert rows["tree-deep"]["cut"] > rows["tree"]["cut"]
    write_decomposition_plot(runs, tmp_path)
    assert (tmp_path / DECOMPOSITION_PLOT).stat().st_size > 10_000
    assert f"benchmarks/plots/{DECOMPOSITION_PLOT}" in "\n".join(c100_section(runs))
    bare = [{**r, "diagnosis": None} for r in runs]
    write_decomposition_plot(bare, tmp_path / "none")
    assert not (tmp_path / "none").exists() and DECOMPOSITION_PLOT not in "\n".join(c100_section(bare))
