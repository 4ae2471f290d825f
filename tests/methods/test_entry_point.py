"""A method another package registers through the ``st_recipe.methods`` entry point is a first-class method:
it is listed, priced exactly, gets a memory estimate, a plan and sweep cells, like the built-in ones."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

PLUGIN = textwrap.dedent('''
    """A third-party method: train only the final layer norm (a plugin st-recipe knows nothing about)."""
    from dataclasses import dataclass
    from typing import Any

    from st_recipe.models.architecture import hf_model
    from st_recipe.methods.base import Method, check_int, set_trainable


    @dataclass
    class FinalNorm(Method):
        name = "finalnorm"
        summary = "the final layer norm only"
        cost_formula = "4N + 2N_t"
        sweep_axis = ("repeats", (1, 2))

        repeats: int = 1

        def validate(self) -> None:
            check_int(self.repeats, "repeats", self.name)

        def apply(self, st_model: Any):
            model = hf_model(st_model)
            set_trainable(model, lambda n: n.startswith("final_layer_norm") or n.startswith("norm."))
            return self.report(st_model)

        def flops_per_token(self, n_params: int, n_trainable: int) -> float:
            return 4.0 * n_params + 2.0 * n_trainable
''')


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Install a plugin package with an entry point, the way pip would (a module and a dist-info folder)."""
    (tmp_path / "st_recipe_finalnorm.py").write_text(PLUGIN)
    info = tmp_path / "st_recipe_finalnorm-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: st-recipe-finalnorm\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[st_recipe.methods]\nfinalnorm = st_recipe_finalnorm:FinalNorm\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "finalnorm"
    sys.modules.pop("st_recipe_finalnorm", None)


def test_an_entry_point_method_is_listed_priced_planned_estimated_and_swept(plugin: str) -> None:
    from st_recipe.costing.memory import estimate_memory
    from st_recipe.costing.pricing import param_counts
    from st_recipe.methods import get_method, list_methods
    from st_recipe.models.catalog import get_spec
    from st_recipe.planning.planner import method_costs, plan
    from st_recipe.sweeps.grid import grid_cells

    assert plugin in list_methods()
    spec = get_spec("pythia-70m")
    method = get_method(plugin)
    n, nt = param_counts(spec, method)  # no closed form: priced on the meta device
    assert (n, nt) == (spec.n_params, 2 * spec.hidden_size)  # the final norm's weight and bias
    assert plugin in {r["method"].split("(")[0] for r in method_costs(spec)}

    est = estimate_memory(spec, method, batch_size=16, max_seq_length=75)
    assert est.optimizer == 8 * nt and est.activations > 0

    recipe = plan(1e16, method=plugin, model="pythia-70m")
    assert recipe.method == plugin and recipe.pairs == int(1e16 // ((4 * n + 2 * nt) * 78))

    cells = grid_cells([1e15], ["pythia-14m"], [plugin, "full"])
    assert [c.config for c in cells] == ["finalnorm(repeats=1)", "finalnorm(repeats=2)", "full()"]
