"""Budget (+ memory cap, + method/model constraints) -> Recipe, following the paper where it speaks.

Rules, all read from ``recipes/defaults.yaml`` with their provenance:
1. method: full fine-tuning below the paper's crossover (~9.06e16 FLOP), LoRA at or above it (paper);
2. model: a heuristic on planned tokens per parameter (written in defaults.yaml), replaced by a fitted
   law when ``fitted=`` is given (``st-recipe fit``);
3. pairs: budget / (cost per token × 78) with N, N_t from the catalogue (derived);
4. under ``max_memory``: GradCache mini-batches, then block freezing, then smaller models (heuristic).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from st_recipe.costing.flops import MAX_BUDGET as MAX_BUDGET  # re-exported: the ceiling lives beside check_budget
from st_recipe.costing.flops import check_budget, format_flops, pairs_for_budget
from st_recipe.costing.flops import check_budget_ceiling as check_budget_ceiling  # re-exported
from st_recipe.costing.memory import MemoryEstimate, estimate_memory, format_bytes, parse_memory
from st_recipe.errors import StRecipeError
from st_recipe.methods import Method, get_method, get_method_class, list_methods
from st_recipe.models.args import parse_model_spec
from st_recipe.models.catalog import CATALOG, ModelSpec
from st_recipe.models.shapes import resolve_shape
from st_recipe.planning.defaults import Defaults, load_defaults
from st_recipe.planning.recipes import Provenance, Recipe

# Quality levers: recipe fields whose defaults and provenance come straight from defaults.yaml.
LEVERS = ("attention", "prompts", "include_prompt", "matryoshka_dims", "hard_negatives")


@dataclass(frozen=True)
class Candidate:
    """One (model, method, mini-batch) option the planner considered."""

    spec: ModelSpec
    method: Method
    n_params: int
    n_trainable: int
    flops_per_token: float
    pairs: int
    mini_batch_size: int | None = None
    memory: MemoryEstimate | None = None


def _candidate(spec: Any, method: Method, budget: float, tokens_per_pair: float) -> Candidate:
    from st_recipe.costing.pricing import cost_per_token

    n, nt, fpt = cost_per_token(spec, method)
    return Candidate(spec, method, n, nt, fpt, pairs_for_budget(budget, fpt, tokens_per_pair))


def _default_method(name: str, defaults: Defaults, method_args: dict[str, Any] | None) -> tuple[Method, Provenance]:
    if method_args:
        return get_method(name, **method_args), Provenance("user")
    return get_method_class(name).planned(**defaults.method_settings(name))


@dataclass(frozen=True)
class _Inputs:
    """What :func:`plan` was asked for, checked, with the defaults it reads (the seed of every later step)."""

    budget: float
    defaults: Defaults
    hard_negatives: int
    tpp: float
    batch: int
    cap: int | None
    seq_len: int
    devices: int
    precision: str
    method: str | None
    fitted: Any
    model: str | None = None
    specs: tuple[Any, ...] = ()
    model_value: Any = None  # the user's MODEL argument as written, when given

    def choose(self, method_obj: Method) -> list[Candidate]:
        """The models ``method_obj`` can train on at least one batch of the budget, best first."""
        cands = [_candidate(s, method_obj, self.budget, self.tpp) for s in self.specs]
        usable = [c for c in cands if c.pairs >= self.batch]
        if not usable:
            smallest = min(cands, key=lambda c: c.flops_per_token)
            need = smallest.flops_per_token * self.tpp * self.batch
            raise StRecipeError(
                f"budget {format_flops(self.budget)} FLOP buys less than one batch of {self.batch} pairs; the minimum is "
                f"{format_flops(need)} FLOP ({smallest.spec.name}, {method_obj.name})"
            )
        if self.model is not None or self.fitted is not None:
            if self.fitted is not None and self.model is None:
                best = self.fitted.model_for(self.budget, method_obj.name, [c.spec.name for c in usable])
                return sorted(usable, key=lambda c: c.spec.name != best)
            return usable
        ratio = self.defaults.model_size.tokens_per_param
        enough = [c for c in usable if c.pairs * self.tpp / c.n_params >= ratio]
        ordered = sorted(enough, key=lambda c: -c.n_params) or sorted(usable, key=lambda c: c.n_params)
        rest = sorted((c for c in usable if c not in ordered), key=lambda c: -c.n_params)
        return ordered + rest


def plan(
    budget: float | str,
    *,
    max_memory: int | str | None = None,
    method: str | None = None,
    model: str | None = None,
    method_args: dict[str, Any] | None = None,
    precision: str = "fp32",
    batch_size: int | None = None,
    fitted: Any = None,
    gpus: int = 1,
    nodes: int = 1,
    hard_negatives: int = 0,
) -> Recipe:
    """Plan a training run for a FLOP budget: model, method (+ args), pairs and hyperparameters, with provenance.

    ``max_memory`` is per device. With ``gpus`` per node × ``nodes`` > 1 devices, the memory check assumes fully
    sharded data parallelism over all of them (FSDP full shard or DeepSpeed ZeRO-3, see ``recipes/launch/``).
    ``hard_negatives`` k prices k more passage-side texts per pair, so the same budget buys fewer pairs.

    Steps: check the inputs (:func:`_seed`), pick the method (:func:`_pick_method`), rank the models and fit
    the memory cap (:class:`_Inputs` ``.choose``, :func:`_fit_memory`), then write the recipe (:func:`_allocate`).
    """
    ins = _seed(budget, max_memory, method, precision, batch_size, fitted, gpus, nodes, hard_negatives)
    primary, method_prov, args_prov = _pick_method(ins, method_args)
    ins = _with_models(ins, model)
    candidates = ins.choose(primary)
    chosen, mem_note = candidates[0], ""
    if ins.cap is not None:
        chosen, mem_note = _fit_memory(ins, candidates, primary)
    if chosen.method is not primary:
        method_prov = args_prov = Provenance("heuristic", mem_note)
    return _allocate(ins, chosen, primary, mem_note, method_prov, args_prov, batch_from_user=bool(batch_size))


def _seed(budget: Any, max_memory: Any, method: str | None, precision: str, batch_size: int | None, fitted: Any,
          gpus: int, nodes: int, hard_negatives: int) -> _Inputs:
    """Step 1 of :func:`plan`: check the budget, devices, batch and hard negatives; read the defaults."""
    budget = check_budget(budget)
    devices = check_devices(gpus, nodes)
    defaults = load_defaults()
    from st_recipe.data.pairs import check_negative_count

    k = check_negative_count(hard_negatives)
    tpp = defaults.tokens_per_pair.value + k * defaults.negative_tokens.value
    batch = int(batch_size or defaults.batch_size.value)
    cap = parse_memory(max_memory) if max_memory is not None else None
    seq_len = defaults.max_seq_length.value
    check_batch_divides(batch, devices, "devices")
    return _Inputs(budget, defaults, k, tpp, batch, cap, seq_len, devices, precision, method, fitted)


def _pick_method(ins: _Inputs, method_args: dict[str, Any] | None) -> tuple[Method, Provenance, Provenance]:
    """Step 2 of :func:`plan`: the user's method, the fitted law's, or the paper's crossover rule."""
    if ins.method is not None:
        method_name, method_prov = ins.method, Provenance("user")
    elif ins.fitted is not None:
        method_name, method_prov = ins.fitted.method_for(ins.budget), Provenance("fitted", ins.fitted.describe())
    else:
        crossover = ins.defaults.method_crossover.value
        above = ins.budget >= crossover
        method_name = (ins.defaults.method_above if above else ins.defaults.method_below).value
        method_prov = Provenance("paper", f"{'LoRA at or above' if above else 'full fine-tuning below'} the paper's crossover of {crossover:.3g} FLOP")
    primary, args_prov = _default_method(method_name, ins.defaults, method_args)
    return primary, method_prov, args_prov


def _with_models(ins: _Inputs, model: str | None) -> _Inputs:
    """Step 3 of :func:`plan`: the model candidates, the user's one or the whole catalogue."""
    if model is None:
        return replace(ins, specs=tuple(CATALOG.values()))
    return replace(ins, model=model, specs=(resolve_shape(model),), model_value=parse_model_spec(model).raw)


def _model_choice(ins: _Inputs, chosen: Candidate) -> tuple[Any, Provenance]:
    """The recipe's model and its provenance: the user's argument, the fitted law's pick, or the heuristic's."""
    if ins.model is not None:
        return ins.model_value, Provenance("user")
    if ins.fitted is not None:
        return chosen.spec.name, Provenance("fitted", ins.fitted.describe())
    return chosen.spec.name, Provenance(ins.defaults.model_size.source, ins.defaults.model_size.rule)


def _allocate(ins: _Inputs, chosen: Candidate, primary: Method, mem_note: str, method_prov: Provenance,
              args_prov: Provenance, *, batch_from_user: bool) -> Recipe:
    """Last step of :func:`plan`: the recipe for the chosen candidate, every field with its provenance."""
    defaults, k, batch = ins.defaults, ins.hard_negatives, ins.batch
    model_value, model_prov = _model_choice(ins, chosen)
    lr_value, lr_prov = learning_rate_for(chosen.spec)
    prov = {
        "model": model_prov,
        "method": method_prov,
        "method_args": args_prov,
        "budget": Provenance("user"),
        "pairs": Provenance("derived", f"budget / ({chosen.method.cost_formula} = {chosen.flops_per_token:.4g} FLOP/token × {ins.tpp:g} tokens/pair)"),
        "tokens_per_pair": defaults.tokens_per_pair.provenance if not k else Provenance(
            "derived", f"{defaults.tokens_per_pair.value:g} per pair + {k} hard negative(s) × "
                       f"{defaults.negative_tokens.value:g} passage tokens"),
        "batch_size": _sharded(Provenance("user") if batch_from_user else defaults.batch_size.provenance, ins.devices,
                               batch,
                               # (the memory note once: here unless GradCache or freezing carry it)
                               mem_note if ins.cap is not None and not chosen.mini_batch_size
                               and chosen.method is primary else ""),
        "mini_batch_size": Provenance("heuristic", mem_note) if chosen.mini_batch_size else Provenance("heuristic", "no GradCache needed"),
        "learning_rate": lr_prov,
        **{name: getattr(defaults, name).provenance for name in ("schedule", "warmup_ratio", "temperature",
                                                                  "max_seq_length", "weight_decay", "pooling")},
        "precision": Provenance("user") if ins.precision != "fp32" else Provenance("heuristic", "fp32 unless --bf16"),
        "seed": defaults.seed.provenance,
        **{name: getattr(defaults, name).provenance for name in LEVERS},
        **({"hard_negatives": Provenance("user")} if k else {}),
    }
    return Recipe(
        model=model_value, method=chosen.method.name, method_args=chosen.method.args(),
        budget=ins.budget, pairs=chosen.pairs, tokens_per_pair=ins.tpp,
        batch_size=batch, mini_batch_size=chosen.mini_batch_size, learning_rate=lr_value,
        schedule=defaults.schedule.value, warmup_ratio=defaults.warmup_ratio.value,
        temperature=defaults.temperature.value, max_seq_length=ins.seq_len,
        weight_decay=defaults.weight_decay.value, pooling=defaults.pooling.value,
        precision=ins.precision, seed=defaults.seed.value,
        attention=defaults.attention.value, prompts=dict(defaults.prompts.value),
        include_prompt=defaults.include_prompt.value,
        matryoshka_dims=None if (dims := defaults.matryoshka_dims.value) is None else list(dims),
        hard_negatives=k or defaults.hard_negatives.value,
        provenance=prov,
    )


def _sharded(prov: Provenance, devices: int, batch: int, mem_note: str) -> Provenance:
    """The batch's provenance, saying how it is split when the plan is for several devices."""
    if devices == 1:
        return prov
    note = (f"the global batch: {batch // devices} pairs on each of {devices} devices; the plan assumes FSDP full "
            f"shard / DeepSpeed ZeRO-3 over the {devices} devices")
    if mem_note:
        note += f" ({mem_note})"
    return Provenance(prov.source, f"{prov.note}; {note}" if prov.note else note)


def learning_rate_for(spec: Any) -> tuple[float, Provenance]:
    """The paper's fine-tuning LR (pretraining LR / 10) where the pretraining LR is known, else the written rule."""
    defaults = load_defaults()
    lr_div = defaults.lr_divisor.value
    known = getattr(spec, "pretrain_lr", None) if spec is not None else None
    if known:
        where = getattr(spec, "pretrain_lr_source", None) or "Biderman et al. 2023 (Pythia)"
        return (float(f"{known / lr_div:.6g}"),
                Provenance("paper", f"{spec.name} pretraining LR {known:g} ({where}) / {lr_div:g}"))
    rule = defaults.unknown_pretrain_lr
    if spec is None:
        return rule.fallback, Provenance(rule.source, f"{rule.rule} Shape unknown: {rule.fallback:g}.")
    import math

    nearest = min(CATALOG.values(), key=lambda c: abs(math.log(c.n_params / max(1, spec.n_params))))
    # A measured multiplier on the borrowed rule (recipes/defaults.yaml cites the benchmark it came from).
    scale = rule.scale
    factor = scale.value if scale is not None else 1.0
    value = float(f"{nearest.pretrain_lr / lr_div * factor:.6g}")
    times = f" × {factor:g}" if factor != 1 else ""
    why = f" {scale.note}" if scale is not None and factor != 1 and scale.note else ""
    return value, Provenance(scale.source if scale is not None and factor != 1 else rule.source,
                             f"{rule.rule} Here: {nearest.name} (N {nearest.n_params:,} vs {spec.n_params:,}), "
                             f"{nearest.pretrain_lr:g} / {lr_div:g}{times} = {value:g}.{why}")


def _fit_memory(ins: _Inputs, candidates: list[Candidate], primary: Method) -> tuple[Candidate, str]:
    """The first option that fits under ``ins.cap`` per device: mini-batches, then block freezing, then smaller models."""
    cap, batch, devices = ins.cap, ins.batch, ins.devices
    assert cap is not None
    minis_ok = [m for m in ins.defaults.memory.mini_batch_sizes if m < batch]
    if devices > 1:
        # Each device runs batch / devices pairs; a GradCache mini-batch only helps when smaller than that.
        minis_ok = [m for m in minis_ok if m < batch // devices]
    where = f"per device, fully sharded (FSDP full shard / ZeRO-3) over {devices} devices" if devices > 1 else ""
    minis = [None] + minis_ok
    methods: list[Method] = [primary]
    if ins.method is None:
        methods += [get_method("freeze", fraction=f) for f in ins.defaults.memory.freeze_fractions]
    smallest: tuple[int, str] | None = None
    for method_obj in methods:
        cands = candidates if method_obj is primary else ins.choose(method_obj)
        for cand in cands:
            for mini in minis:
                est = estimate_memory(cand.spec, method_obj, batch_size=batch, max_seq_length=ins.seq_len,
                                      precision=ins.precision, mini_batch_size=mini, devices=devices,
                                      hard_negatives=ins.hard_negatives)
                label = f"{cand.spec.name} / {method_obj.describe()}" + (f" / mini-batch {mini}" if mini else "")
                if smallest is None or est.total < smallest[0]:
                    smallest = (est.total, label)
                if est.total <= cap:
                    note = f"fits under {format_bytes(cap)}: estimated peak {format_bytes(est.total)}"
                    if where:
                        note += f" {where}; launch with recipes/launch/fsdp.yaml or deepspeed-zero3.yaml"
                    if method_obj is not primary:
                        note += f" ({primary.name} did not fit; the paper recommends block freezing under memory limits)"
                    if mini:
                        note += f"; GradCache mini-batch {mini} keeps the {batch}-pair batch"
                    return Candidate(cand.spec, method_obj, cand.n_params, cand.n_trainable, cand.flops_per_token,
                                     cand.pairs, mini, est), note
    assert smallest is not None
    raise StRecipeError(
        f"nothing fits under {format_bytes(cap)}{' ' + where if where else ''}: the smallest option needs "
        f"{format_bytes(smallest[0])} ({smallest[1]})"
    )


def with_hard_negatives(recipe: Recipe, k: int) -> Recipe:
    """The recipe training with ``k`` hard negatives per pair: tokens per pair and (with a budget) pairs re-derived."""
    from st_recipe.data.pairs import check_negative_count

    k = check_negative_count(k)
    if k == recipe.hard_negatives:
        return recipe
    per_negative = load_defaults().negative_tokens.value
    tpp = recipe.tokens_per_pair + (k - recipe.hard_negatives) * per_negative
    out = recipe.replace(hard_negatives=k)
    out = out.replace("derived", f"{recipe.tokens_per_pair:g} + {k - recipe.hard_negatives} hard negative(s) × "
                                 f"{per_negative:g} passage tokens", tokens_per_pair=tpp)
    if recipe.budget:
        pairs = max(1, int(recipe.pairs * recipe.tokens_per_pair / tpp))
        out = out.replace("derived", f"the budget at {tpp:g} tokens per pair (hard negatives included)", pairs=pairs)
    return out


def check_devices(gpus: Any, nodes: Any) -> int:
    """The device count ``gpus`` × ``nodes`` (each an integer >= 1)."""
    for name, value in (("gpus", gpus), ("nodes", nodes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise StRecipeError(f"--{name} must be an integer >= 1, not {value!r}")
    return gpus * nodes


def check_batch_divides(batch: int, count: int, what: str = "processes") -> None:
    """The one check that a global batch splits evenly over ``count`` devices or processes."""
    if batch % count:
        raise StRecipeError(f"batch size {batch} is not divisible by the {count} {what}")


def method_costs(spec: Any, recipe: Recipe | None = None) -> list[dict[str, Any]]:
    """Cost per token and trainable parameters of every available method on a shape (its planner defaults)."""
    from st_recipe.costing.pricing import cost_per_token

    defaults = load_defaults()
    rows = []
    for name in list_methods():
        if recipe is not None and recipe.method == name:
            method = get_method(name, **recipe.method_args)
        else:
            method = _default_method(name, defaults, None)[0]
        try:
            n, nt, fpt = cost_per_token(spec, method)
        except StRecipeError:
            continue  # this method does not apply to this architecture (e.g. bias-only on a bias-free model)
        rows.append({"method": method.describe(), "formula": method.cost_formula, "n_params": n, "n_trainable": nt,
                     "flops_per_token": fpt})
    return rows


def paper_grid() -> dict[str, Recipe]:
    """The planner's recipe at each of the paper's budgets, named ``paper-<budget>``."""
    out = {}
    for b in load_defaults().budgets:
        recipe = plan(b)
        recipe.provenance["budget"] = Provenance("paper", "one of the paper's six budgets (a x4 grid)")
        out[f"paper-{budget_label(b)}"] = recipe
    return out


def budget_label(budget: float) -> str:
    """Compact budget text for names: 1.5e15, 9.6e16."""
    return f"{budget:.4g}".replace("e+", "e")


def write_paper_grid(path: Any) -> None:
    """Write ``recipes/paper-grid.yaml`` from :func:`paper_grid` (kept in sync by a test)."""
    import yaml

    header = (
        "# The paper's budget grid, as planned by st-recipe (generated by st_recipe.planning.planner.write_paper_grid).\n"
        "# Method, batch, temperature, LR rule, schedule, length and LoRA settings are the paper's; model sizes are\n"
        "# our heuristic (see defaults.yaml) because the paper's per-budget table could not be obtained.\n"
    )
    body = yaml.safe_dump({"recipes": {k: r.to_dict() for k, r in paper_grid().items()}}, sort_keys=False, width=120, allow_unicode=True)
    from st_recipe._io import atomic_write_text

    atomic_write_text(path, header + body)
