"""FGSN sweep on the real model (issue 21 item 4): mask density and safety-layer selection, selection split.

On SmolLM2 the service's FGSN mask (q = p = 0.05: top 5 % rows by Wanda score on harmful inputs minus the top
5 % on benign inputs, in the half of the layers where harmful and benign last-token states diverge most) is
~50 rows (0.06 %) and moves no score: the two top-5 % sets are nearly the same rows. This sweeps the
multi-level reading of the paper (shared/reference/algorithms.md §3):

* neuron level: q (top fraction on harmful inputs) and p (benign top fraction removed; 0 = no difference);
* layer level: ``gap:F`` (the fraction F of layers with the largest harmful/benign divergence step, today's
  rule), ``band:F`` (the contiguous window of that many layers with the largest summed divergence: the paper's
  "layers 10-15"), ``all``;
* category level (``multi``): the continual-projection clusters: the union of the per-harm-category top-q
  rows (each category of the safety corpus scored on its own prompts), minus the benign top-p.
* control (``random``): a fraction q of each selected layer's rows drawn at random (seeded), no safety score:
  what the Wanda selection adds over projecting as many rows.

Each setting projects the masked rows of the fine-tuned adapter's B onto the alignment delta's column space
(``tuning.safety.methods.fgsn``, unchanged) and is scored on the SELECTION split (harmful_eval / benign_eval,
``--n-eval`` per sub-split) with the controller's checks against the aligned row. Results are appended to
DIR/fgsn_sweep.json after every setting and a rerun skips the settings already there, so the sweep can run in
short chunks (``--budget-s``). ``--q 1 --p-benign 0 --layers all`` masks every row: the most any FGSN mask can
do. The sweep also records ``reach`` (``tuning.safety.methods.fgsn.reach``): the share of the fine-tune's change
that lies inside the alignment's column space, which the projection keeps whatever the mask.

    python bench/fgsn_sweep.py --finetuned OUT/p0.1/finetuned --train-s 61.7 --out OUT/fgsn --budget-s 540
    python bench/fgsn_sweep.py --p 0.1 --n 120 --out OUT/fgsn      # fine-tunes first (the bench's protocol)
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.real_model import Bench, fine_tune
from realmodel.attack import customer_dataset
from realmodel.build import RealModel, build_real_model
from tuning.adapters import read_adapter
from tuning.safety import activations as act
from tuning.safety.common import leaf
from tuning.safety.controller import Scores, Tolerances, checks
from tuning.safety.masks import _top_mask
from tuning.safety.methods.fgsn import FgsnConfig, fgsn, reach


class Probe:
    """What every mask needs, computed once on the aligned model: per-module input column norms (Wanda's
    ‖X_j‖) on harmful, benign and each category's harmful prompts, and the per-layer divergence step."""

    def __init__(self, rm: RealModel, device: str | None, per_category: int, max_samples: int) -> None:
        from tuning.modeling import load_model

        t = time.monotonic()
        alignment = read_adapter(rm.alignment_adapter)
        targets = tuple(sorted({leaf(m) for m in alignment.modules()}))
        model, tok = load_model(str(rm.base), device=device, adapter=str(rm.alignment_adapter))
        corpus = rm.load_split("safety_corpus")
        harmful = [r for r in corpus if r["kind"] == "harmful"]
        benign = [r for r in corpus if r["kind"] == "benign"][:max_samples]
        self.weights = {k: v.weight.detach().float() for k, v in act.target_linears(model, targets).items()}
        self.cols = {"harmful": self._cols(model, tok, harmful[:max_samples], targets)}
        self.cols["benign"] = self._cols(model, tok, benign, targets)
        self.categories = sorted({r["category"] for r in harmful})
        for c in self.categories:
            rows = [r for r in harmful if r["category"] == c][:per_category]
            self.cols[f"cat:{c}"] = self._cols(model, tok, rows, targets)
        h = act.last_token_states(model, tok, [r["prompt"] for r in harmful[:max_samples]])
        b = act.last_token_states(model, tok, [r["prompt"] for r in benign])
        hn, bn = torch.nn.functional.normalize(h.mean(1), dim=-1), torch.nn.functional.normalize(b.mean(1), dim=-1)
        sim = (hn * bn).sum(-1)[1:]
        self.gap = torch.cat([1 - sim[:1], sim[:-1] - sim[1:]])  # the same rule as tuning.safety.masks
        self.compute_s = round(time.monotonic() - t, 1)
        del model

    @staticmethod
    def _cols(model, tok, rows: list[dict], targets: tuple[str, ...]) -> dict[str, torch.Tensor]:
        grams = act.collect(model, tok, rows, targets, prompt_only=True)
        return {k: (torch.diagonal(g["gram"]) / max(g["n"], 1)).clamp_min(0).sqrt() for k, g in grams.items()}

    def layers(self, rule: str) -> list[int]:
        n = len(self.gap)
        if rule == "all":
            return list(range(n))
        kind, frac = rule.split(":")
        k = max(1, round(n * float(frac)))
        if kind == "gap":
            return sorted(int(i) for i in self.gap.topk(k).indices)
        if kind == "band":
            sums = [float(self.gap[i : i + k].sum()) for i in range(n - k + 1)]
            start = max(range(len(sums)), key=sums.__getitem__)
            return list(range(start, start + k))
        raise ValueError(f"unknown layer rule {rule!r} (gap:F, band:F or all)")

    def _score(self, name: str, cols: str) -> torch.Tensor:
        return (self.weights[name].abs() * self.cols[cols][name][None, :]).sum(1)

    def masks(self, q: float, p: float, layers: list[int], level: str) -> dict[str, torch.Tensor]:
        from tuning.safety.common import layer_of

        out = {}
        for name in self.weights:
            if layer_of(name) not in layers:
                continue
            if level == "random":  # the control: as many rows, chosen without any safety score
                g = torch.Generator().manual_seed(len(out))
                rows = torch.rand(self.weights[name].shape[0], generator=g) < q
            elif level == "multi":
                rows = torch.stack([_top_mask(self._score(name, f"cat:{c}"), q) for c in self.categories]).any(0)
            else:
                rows = _top_mask(self._score(name, "harmful"), q)
            if p > 0:
                rows = rows & ~_top_mask(self._score(name, "benign"), p)
            out[f"fgsn/{name}"] = rows
        return out

    def total_rows(self) -> int:
        return sum(w.shape[0] for w in self.weights.values())


def settings(args: argparse.Namespace) -> list[dict]:
    grid = itertools.product(args.q, args.p_benign, args.layers, args.levels)
    return [{"q": q, "p": p, "layers": lay, "level": lev} for q, p, lay, lev in grid]


def key(s: dict) -> str:
    return f"q={s['q']} p={s['p']} layers={s['layers']} level={s['level']}"


def load_results(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {"settings": []}


def run_setting(b: Bench, probe: Probe, ft, s: dict, ctx: dict) -> dict:
    t = time.monotonic()
    layers = probe.layers(s["layers"])
    masks = probe.masks(s["q"], s["p"], layers, s["level"])
    adapter, info = fgsn(ft, b.alignment, masks, FgsnConfig())
    method_s = time.monotonic() - t
    scores = b.evaluate(adapter)
    ok = checks(scores, ctx["before"], ctx["aligned"], Tolerances())
    rows = info["neurons_changed"]
    return {
        **s,
        "key": key(s),
        "layer_ids": layers,
        "rows": rows,
        "density": round(rows / probe.total_rows(), 5),
        **scores.rounded(),
        "checks": ok,
        "passed": bool(ok["hs"] and ok["fa"] and ok["over_refusal"]),
        "method_s": round(method_s, 2),
        "ratio": round(method_s / ctx["train_s"], 4) if ctx["train_s"] else None,
    }


def prepare(args: argparse.Namespace, rm: RealModel, b: Bench, out: Path) -> tuple:
    """The fine-tuned adapter (given, or trained here with the bench's protocol) and its training seconds."""
    if args.finetuned:
        return read_adapter(args.finetuned), args.train_s
    rows = customer_dataset(rm, args.n, args.p, args.seed, args.family)
    ft_dir, train_s, _ = fine_tune(rm, rows, out, args)
    return read_adapter(ft_dir), train_s


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--finetuned", help="a fine-tuned adapter dir (e.g. a bench run's DIR/p0.1/finetuned)")
    ap.add_argument("--train-s", type=float, default=0.0, help="its training seconds (for the ratio)")
    ap.add_argument("--p", type=float, default=0.1, help="poison ratio when fine-tuning here")
    ap.add_argument("--family", default="poison")
    ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--q", type=float, nargs="+", default=[0.05, 0.1, 0.2, 0.4])
    ap.add_argument("--p-benign", type=float, nargs="+", default=[0.05, 0.0])
    ap.add_argument("--layers", nargs="+", default=["gap:0.5", "band:0.25", "all"])
    ap.add_argument("--levels", nargs="+", default=["single", "multi"], choices=["single", "multi", "random"])
    ap.add_argument("--per-category", type=int, default=32, help="harmful prompts per category (multi level)")
    ap.add_argument("--max-samples", type=int, default=256)
    ap.add_argument("--n-eval", type=int, default=32, help="prompts per selection sub-split (0 = all)")
    ap.add_argument("--n-task-eval", type=int, default=64)
    ap.add_argument("--budget-s", type=float, default=0, help="stop starting settings after this many seconds")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gguf")
    ap.add_argument("--device", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="bench/out-fgsn")
    args = ap.parse_args(argv)
    args.n_audit, args.repair_max = 0, 0  # Bench's fields; the sweep scores the selection split only
    if not torch.cuda.is_available():
        torch.set_num_threads(args.threads)
    t0 = time.monotonic()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "fgsn_sweep.json"
    res = load_results(path)
    rm = build_real_model(args.gguf, seed=args.seed)
    b = Bench(rm, args, None)  # no cached masks needed: the sweep builds its own
    ft, train_s = prepare(args, rm, b, out)
    if "aligned" not in res:
        res["aligned"], res["fine-tuned"] = b.evaluate(b.alignment).rounded(), b.evaluate(ft).rounded()
        res["train_s"] = train_s
    if "reach" not in res:  # like the scores above: once per output directory (one fine-tuned adapter)
        res["reach"] = reach(ft, b.alignment)
    ctx = {"aligned": Scores(**res["aligned"]), "before": Scores(**res["fine-tuned"]), "train_s": res["train_s"]}
    probe = Probe(rm, args.device, args.per_category, args.max_samples)
    res["probe_s"], res["gap"] = probe.compute_s, [round(float(x), 4) for x in probe.gap]
    done = {r["key"] for r in res["settings"]}
    for s in (s for s in settings(args) if key(s) not in done):
        if args.budget_s and time.monotonic() - t0 > args.budget_s:
            print(json.dumps({"stopped": "budget", "left": len(settings(args)) - len(res["settings"])}))
            break
        r = run_setting(b, probe, ft, s, ctx)
        res["settings"].append(r)
        path.write_text(json.dumps(res, indent=2))
        print(json.dumps({k: r[k] for k in ("key", "rows", "density", "hs", "fa", "over_refusal", "passed")}))
    path.write_text(json.dumps(res, indent=2))
    b.close()
    print_sweep(res)


def print_sweep(res: dict) -> None:
    a, f = res["aligned"], res["fine-tuned"]
    print(f"aligned HS {a['hs']} FA {a['fa']} OR {a['over_refusal']}; fine-tuned HS {f['hs']} FA {f['fa']}")
    if "reach" in res:
        print(f"change inside the alignment's column space (no FGSN mask removes it): {res['reach']}")
    print(f"{'setting':<46}{'rows':>7}{'density':>9}{'HS':>7}{'FA':>7}{'OR':>7}{'s':>7}  pass")
    for r in res["settings"]:
        print(
            f"{r['key']:<46}{r['rows']:>7}{r['density']:>9.4f}{r['hs']:>7.1f}{r['fa']:>7.1f}{r['over_refusal']:>7.1f}"
            f"{r['method_s']:>7.2f}  {r['passed']}"
        )


if __name__ == "__main__":
    main()
