"""--eval-file's dev curve on the published card: beside the loss on the plot, and as a table."""

from __future__ import annotations

from pathlib import Path

from tests.publishing.common import PUBLIC, copy_run, edit_record


def test_dev_curve_is_on_the_card_plot_and_in_a_table(run_dir: Path, tmp_path: Path) -> None:
    import matplotlib.image

    from st_recipe.publishing import publish

    plain = tmp_path / "plain"
    publish(run_dir, PUBLIC, dry_run=plain, no_scores=True)
    run = copy_run(run_dir, tmp_path / "run")
    points = [{"flops": 0.0, "step": 0, "score": 0.21}, {"flops": 2e8, "step": 2, "score": 0.35},
              {"flops": 4e8, "step": 4, "score": 0.4}]
    edit_record(run, dev={"task": "dev-sts", "spec": "sts:dev.jsonl", "every_flops": 2e8, "points": points,
                          "eval_flops": 3.3e7, "counted_in_budget": False})
    publish(run, PUBLIC, dry_run=tmp_path / "dry", no_scores=True)
    card = (tmp_path / "dry" / "README.md").read_text()
    assert "![Training loss per optimizer step, and the dev score against training FLOPs]" in card
    assert "Dev score on `dev-sts` during training (its 3.300e07 FLOP of evaluation are not counted" in card
    assert "| 0 | 0 | 0.2100 |\n| 2.000e08 | 2 | 0.3500 |\n| 4.000e08 | 4 | 0.4000 |" in card
    plot = [p for p in (tmp_path / "dry").rglob("*.png") if "loss" in p.name][0]
    plain_plot = [p for p in plain.rglob("*.png") if "loss" in p.name][0]
    # The dev panel sits beside the loss panel: the figure is wider than the loss-only one.
    assert matplotlib.image.imread(plot).shape[1] > 1.5 * matplotlib.image.imread(plain_plot).shape[1]
