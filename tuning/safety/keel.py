"""Keel realignment: a closed-form, layer-by-layer contrastive edit of the fine-tuned LoRA.

Idea (grounded in NLSR's "transplant the aligned reference where safety lives", FGSN/SafeLoRA's "the
alignment delta defines the safety directions" and GPTQ/MEMIT-style sequential least squares): for every
adapted module, in forward order, solve for the update ΔW' that

* on **harmful contexts** (safety-corpus harmful prompts with refusals, positions from the decision point
  on) reproduces the module outputs of the *reference* model W0 + (1+β)·ΔW_a (β: NLSR's extrapolation),
* on **keep contexts** (benign corpus prompts with helpful answers, and the customer's own screened data,
  all positions) reproduces the outputs of the *fine-tuned* model W0 + ΔW_t,

using the inputs the *edited* model itself produces at that point (true-sequential: errors of lower
modules are corrected by upper ones instead of compounding):

    min_ΔW  λ·mean_h ‖(W0+ΔW)e_h − W_ref t_h‖² + w_b·mean_b ‖(W0+ΔW)e_b − W_t t_b‖²
            + w_t·mean_k ‖(W0+ΔW)e_k − W_t t_k‖² + ρ‖ΔW − ΔW_t‖²_F

(e: input of the module in the edited model, t: in the target model, same token). Solution
ΔW = (R + ρΔW_t)(G + ρI)⁻¹. The LoRA keeps its rank r: we take the reduced-rank-regression optimum of
the same objective, ΔW_r = U Uᵀ ΔW with U the top-r eigenvectors of ΔW (G+ρI) ΔWᵀ (the fitted
outputs), refactored as A', B' with the singular values split evenly; the share of fitted-output energy
lost to the truncation is reported per module. Strength = (λ, β).

Cost per layer: two forward passes of that single layer per module group (q/k/v → o → gate/up → down,
discovered from call order) over the corpus, plus two to advance the cached hidden states.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import torch

from tuning.adapters import Adapter, a_key, b_key
from tuning.data import collate, encode_example
from tuning.safety.common import cosine, layer_of, reference, short


@dataclass(frozen=True)
class KeelConfig:
    lam: float = 30.0              # weight of harmful contexts
    beta: float = 0.0              # harmful target = W0 + (1+β)ΔW_a (0: the aligned model itself)
    w_benign: float = 5.0          # weight of benign corpus contexts
    w_task: float = 20.0           # weight of the customer's (screened) contexts
    ridge: float = 1e-3            # ρ = ridge·tr(G)/d
    harmful_positions: str = "decision"  # "decision": last prompt token + response; "all": every token
    decision_weight: float = 1.0   # extra weight of the last prompt token (where the model decides) in every set
    max_len: int = 256
    batch_size: int = 32

    @staticmethod
    def from_dict(d: dict | None) -> "KeelConfig":
        return KeelConfig(**{k: v for k, v in (d or {}).items() if k in KeelConfig.__dataclass_fields__})


@dataclass
class _Set:
    name: str
    batches: list[dict]
    target: dict[str, torch.Tensor]  # module → delta whose outputs this set must reproduce
    weight: float                    # per-token weight (w / tokens in the set)
    hidden_e: list[torch.Tensor] = field(default_factory=list)  # edited model, input of the current layer
    hidden_t: list[torch.Tensor] = field(default_factory=list)  # target model, same
    kwargs: list[dict] = field(default_factory=list)             # what every decoder layer receives


class _Stop(Exception):
    pass


def decoder_layers(model) -> torch.nn.ModuleList:  # noqa: ANN001
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.ModuleList) and name.endswith("layers"):
            return mod
    raise ValueError("no decoder layer list found in the model")


def encode(tok, convs: list[list[dict]], max_len: int, batch_size: int, decision: bool,  # noqa: ANN001
           decision_weight: float = 1.0) -> list[dict]:
    """Batches with a ``pos`` mask (every real token, or with ``decision`` the last prompt token and the
    response) and per-position weights ``w`` (the last prompt token weighs ``decision_weight``)."""
    out = []
    for i in range(0, len(convs), batch_size):
        b = collate([encode_example(tok, c, max_len) for c in convs[i : i + batch_size]], tok.pad_token_id)
        pos = b["attention_mask"].bool()
        start = ((b["labels"] != -100).float().argmax(1) - 1).clamp_min(0)
        if decision:
            pos = pos & (torch.arange(pos.shape[1])[None, :] >= start[:, None])
        w = pos.float()
        w[torch.arange(len(start)), start] *= decision_weight
        b["pos"], b["w"] = pos, w
        out.append(b)
    return out


@contextmanager
def _inputs(model, names: list[str], store: dict) -> Iterator[dict]:  # noqa: ANN001
    hooks = [model.get_submodule(n).register_forward_hook(
        lambda _m, args, _o, n=n: store.__setitem__(n, args[0].detach())) for n in names]
    try:
        yield store
    finally:
        for h in hooks:
            h.remove()


class _Editor:
    """Owns the base weights while editing: puts W0 + delta into modules, restores W0 at the end."""

    def __init__(self, model, ft: Adapter) -> None:  # noqa: ANN001
        self.model = model
        self.key = {short(m): m for m in ft.modules()}
        self.lin = {n: model.get_submodule(n) for n in self.key}
        self.w0 = {n: lin.weight.detach().clone() for n, lin in self.lin.items()}
        self.ft = {n: ft.delta(m) for n, m in self.key.items()}
        self.edited = dict(self.ft)

    def put(self, names: list[str], deltas: dict[str, torch.Tensor]) -> None:
        for n in names:
            w = self.lin[n].weight
            w.data.copy_(self.w0[n] + deltas[n].to(w.device, w.dtype))

    def restore(self) -> None:
        for n, lin in self.lin.items():
            lin.weight.data.copy_(self.w0[n])


@torch.no_grad()
def _first_inputs(model, s: _Set) -> None:  # noqa: ANN001
    """Hidden states entering layer 0 and the keyword arguments decoder layers receive, per batch."""
    device, grabbed = next(model.parameters()).device, {}

    def pre(_m, args, kwargs):  # noqa: ANN001, ANN202
        grabbed["h"], grabbed["kw"] = args[0] if args else kwargs["hidden_states"], dict(kwargs)
        raise _Stop

    handle = decoder_layers(model)[0].register_forward_pre_hook(pre, with_kwargs=True)
    try:
        for b in s.batches:
            try:
                model(input_ids=b["input_ids"].to(device), attention_mask=b["attention_mask"].to(device),
                      use_cache=False)
            except _Stop:
                pass
            kw = {k: v for k, v in grabbed["kw"].items() if k not in ("past_key_values", "past_key_value",
                                                                       "hidden_states")}
            s.kwargs.append({**kw, "use_cache": False})
            s.hidden_e.append(grabbed["h"].clone())
            s.hidden_t.append(grabbed["h"].clone())
    finally:
        handle.remove()


@torch.no_grad()
def _groups(ed: _Editor, layer, names: list[str], s: _Set) -> list[list[str]]:  # noqa: ANN001
    """The layer's adapted modules in call order; consecutive modules reading the same tensor form a group."""
    order: list[tuple[str, int]] = []
    hooks = [ed.model.get_submodule(n).register_forward_hook(
        lambda _m, args, _o, n=n: order.append((n, args[0].data_ptr()))) for n in names]
    try:
        layer(s.hidden_e[0], **s.kwargs[0])
    finally:
        for h in hooks:
            h.remove()
    groups: list[list[str]] = []
    last = None
    for n, ptr in order:
        if any(n in g for g in groups):
            continue
        if groups and ptr == last:
            groups[-1].append(n)
        else:
            groups.append([n])
        last = ptr
    return groups


@torch.no_grad()
def _accumulate(ed: _Editor, layer, names: list[str], group: list[str], sets: list[_Set]) -> tuple[dict, dict]:  # noqa: ANN001
    """G = Σ w·eᵀe and R = Σ w·(t W_targetᵀ − e W0ᵀ)ᵀe for each module of ``group``."""
    gram: dict[str, torch.Tensor] = {}
    rhs: dict[str, torch.Tensor] = {}
    for s in sets:
        for i, b in enumerate(s.batches):
            pos = b["pos"].reshape(-1).to(s.hidden_e[i].device)
            wt = b["w"].reshape(-1).to(s.hidden_e[i].device)[pos][:, None]
            ed.put(names, ed.edited)
            with _inputs(ed.model, group, {}) as got_e:
                layer(s.hidden_e[i], **s.kwargs[i])
            ed.put(names, s.target)
            with _inputs(ed.model, group, {}) as got_t:
                layer(s.hidden_t[i], **s.kwargs[i])
            for n in group:
                e = got_e[n].reshape(-1, got_e[n].shape[-1])[pos].float()
                t = got_t[n].reshape(-1, got_t[n].shape[-1])[pos].float()
                w0 = ed.w0[n].float()
                y = t @ (w0 + s.target[n].to(w0.device)).T - e @ w0.T
                gram[n] = gram.get(n, 0) + s.weight * (e.T @ (wt * e))
                rhs[n] = rhs.get(n, 0) + s.weight * (y.T @ (wt * e))
    return gram, rhs


def _solve(gram: torch.Tensor, rhs: torch.Tensor, prior: torch.Tensor, ridge: float, rank: int
           ) -> tuple[torch.Tensor, float]:
    g = gram.double()
    rho = ridge * float(torch.trace(g)) / g.shape[0] + 1e-12
    reg = g + rho * torch.eye(g.shape[0], dtype=g.dtype, device=g.device)
    full = torch.linalg.solve(reg, (rhs.double() + rho * prior.to(g.device).double()).T).T
    fitted = full @ reg @ full.T
    _, vecs = torch.linalg.eigh((fitted + fitted.T) / 2)
    u = vecs[:, -rank:]
    low = u @ (u.T @ full)
    total = float(torch.trace(fitted))
    lost = 1.0 - float(torch.trace(low @ reg @ low.T)) / total if total > 0 else 0.0
    return low.float(), lost


def factor(delta: torch.Tensor, r: int, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(A [r,in], B [out,r]) with scale·B·A = delta for rank(delta) ≤ r; singular values split evenly."""
    u, s, vh = torch.linalg.svd(delta.float(), full_matrices=False)
    root = (s[:r] / scale).clamp_min(0).sqrt()
    return root[:, None] * vh[:r], u[:, :r] * root[None, :]


@torch.no_grad()
def _advance(ed: _Editor, layer, names: list[str], sets: list[_Set]) -> None:  # noqa: ANN001
    for s in sets:
        ed.put(names, ed.edited)
        s.hidden_e = [layer(h, **kw) for h, kw in zip(s.hidden_e, s.kwargs)]
        ed.put(names, s.target)
        s.hidden_t = [layer(h, **kw) for h, kw in zip(s.hidden_t, s.kwargs)]


def _make_sets(tok, ft: Adapter, alignment: Adapter, data: dict[str, list[list[dict]]], cfg: KeelConfig  # noqa: ANN001
               ) -> list[_Set]:
    ref = reference(alignment, cfg.beta) if cfg.beta else alignment
    ref_d = {short(m): ref.delta(m) for m in ft.modules()}
    ft_d = {short(m): ft.delta(m) for m in ft.modules()}
    spec = [("harmful", cfg.lam, ref_d, cfg.harmful_positions == "decision"), ("benign", cfg.w_benign, ft_d, False),
            ("task", cfg.w_task, ft_d, False)]
    sets = []
    for name, w, target, decision in spec:
        if w <= 0 or not data.get(name):
            continue
        batches = encode(tok, data[name], cfg.max_len, cfg.batch_size, decision, cfg.decision_weight)
        n_tok = sum(float(b["w"].sum()) for b in batches)
        sets.append(_Set(name, batches, target, w / max(n_tok, 1)))
    if not any(s.name == "harmful" for s in sets):
        raise ValueError("keel needs harmful safety-corpus conversations")
    return sets


def keel_realign(model, tok, ft: Adapter, alignment: Adapter, data: dict[str, list[list[dict]]],  # noqa: ANN001
                 cfg: KeelConfig | dict | None = None) -> tuple[Adapter, dict]:
    """Edit ``ft`` (same keys, shapes, rank, config). ``data``: {"harmful": [...], "benign": [...],
    "task": [...]} chat conversations. ``model`` is the plain base model (weights restored on return)."""
    cfg = cfg if isinstance(cfg, KeelConfig) else KeelConfig.from_dict(cfg)
    ed = _Editor(model, ft)
    r, scale = int(ft.config["r"]), ft.scale
    sets = _make_sets(tok, ft, alignment, data, cfg)
    lost: dict[str, float] = {}
    try:
        for s in sets:
            _first_inputs(model, s)
        for idx, layer in enumerate(decoder_layers(model)):
            names = [n for n in ed.key if layer_of(n) == idx]
            if names:
                for group in _groups(ed, layer, names, sets[0]):
                    gram, rhs = _accumulate(ed, layer, names, group, sets)
                    for n in group:
                        ed.edited[n], lost[n] = _solve(gram[n], rhs[n], ed.ft[n], cfg.ridge, r)
            _advance(ed, layer, names, sets)
    finally:
        ed.restore()
    return _to_adapter(ft, alignment, ed, lost, r, scale, cfg)


def _to_adapter(ft: Adapter, alignment: Adapter, ed: _Editor, lost: dict, r: int, scale: float,
                cfg: KeelConfig) -> tuple[Adapter, dict]:
    out = ft.clone()
    sims, change = {}, {}
    for n, m in ed.key.items():
        a, b = factor(ed.edited[n], r, scale)
        out.state[a_key(m)] = a.to(ft.state[a_key(m)].dtype).contiguous()
        out.state[b_key(m)] = b.to(ft.state[b_key(m)].dtype).contiguous()
        new = out.delta(m)
        sims[m] = round(cosine(new - ed.ft[n], alignment.delta(m) - ed.ft[n]), 4)
        change[m] = round(float((new - ed.ft[n]).norm() / ed.ft[n].norm().clamp_min(1e-12)), 4)
    info = {"modules_changed": sorted(ed.key.values()), "neurons_changed": 0, "per_module_similarity": sims,
            "relative_change": change, "rank_truncation_loss": {ed.key[n]: round(v, 5) for n, v in lost.items()},
            "config": asdict(cfg)}
    return out, info


# The first (projection) design, importable under its old names.
from tuning.safety.projection import contrast_basis, keel  # noqa: E402, F401
