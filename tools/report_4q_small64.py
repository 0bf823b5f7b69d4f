"""Tables and figures of the 4Q-small 64 px experiment (tools/experiment_4q_small64.sh; docs/experiments.md).

    python tools/report_4q_small64.py WORKSPACE --compare     # paired comparisons into WORKSPACE/results/compare/
    python tools/report_4q_small64.py WORKSPACE --out docs     # + figures into docs/img/, tables into the workspace

Everything is read from the workspace's own records (results/*/metrics.json and predictions.csv, runs/*/*/stats.jsonl,
synthetic/generate.json, synthetic/_novelty/novelty.json), so every number traces back to a results folder. The
"best classic image preset" arm is chosen per classifier by mean VALIDATION macro-F1; nothing here looks at test to
choose anything.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from augment.errors import UserError  # noqa: E402
from augment.io_utils import atomic_write_text  # noqa: E402
from augment.workspace import Workspace  # noqa: E402
from classify.stats import t_interval  # noqa: E402

IMAGE_PRESET_ARMS = ("real~thesis", "real~specaugment")
ARM_ORDER = ("real", *IMAGE_PRESET_ARMS, "augmented", "real+augmented", "synthetic", "real+synthetic",
             "real+synthetic+augmented")
PREFIX = "4q64"


def classifier_of(m: dict[str, Any]) -> str:
    return f"{m['arch']} {m['mode']}"


def newest_per_seed(ws: Workspace) -> dict[tuple[str, str], dict[int, dict[str, Any]]]:
    """(classifier, arm) → seed → metrics of the newest finished run (run folders are numbered in order)."""
    out: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    for d in sorted(p for p in ws.results_dir.glob("[0-9][0-9][0-9][0-9][0-9]-*") if (p / "metrics.json").is_file()):
        m = json.loads((d / "metrics.json").read_text(encoding="utf-8"))
        if m.get("arch") == "baseline":
            continue
        out.setdefault((classifier_of(m), m.get("arm", m["train"])), {})[m["seed"]] = m
    return out


def best_image_preset(runs: dict[tuple[str, str], dict[int, dict[str, Any]]], clf: str) -> str | None:
    """The classic image-augmentation arm with the best mean validation macro-F1 (ties: the first listed)."""
    scored = [(np.mean([m["val"]["macro_f1"] for m in runs[(clf, arm)].values()]), -i, arm)
              for i, arm in enumerate(IMAGE_PRESET_ARMS) if (clf, arm) in runs]
    return max(scored)[2] if scored else None


def arm_table(runs: dict[tuple[str, str], dict[int, dict[str, Any]]]) -> str:
    lines = ["| classifier | arm | test macro-F1 mean ± sd | 95 % t-interval | per seed | val macro-F1 | runs |",
             "|---|---|---|---|---|---|---|"]
    for clf in sorted({c for c, _ in runs}):
        best = best_image_preset(runs, clf)
        for arm in sorted((a for c, a in runs if c == clf), key=lambda a: (ARM_ORDER + (a,)).index(a)):
            ms = [runs[(clf, arm)][s] for s in sorted(runs[(clf, arm)])]
            f1 = [m["test"]["macro_f1"] for m in ms]
            ci = t_interval(f1) if len(f1) >= 3 else None
            spread = f"± {np.std(f1, ddof=1):.3f}" if len(f1) > 1 else "(one run)"  # one run has no sd
            mark = " (best image preset by val)" if arm == best else ""
            lines.append(f"| {clf} | {arm}{mark} | {np.mean(f1):.3f} {spread} | "
                         f"{f'[{ci[0]:.3f}, {ci[1]:.3f}]' if ci else '–'} | {' / '.join(f'{x:.3f}' for x in f1)} | "
                         f"{np.mean([m['val']['macro_f1'] for m in ms]):.3f} | "
                         f"{', '.join(m['run_id'][:5] for m in ms)} |")
    return "\n".join(lines)


def missing_seeds(runs: dict[tuple[str, str], dict[int, dict[str, Any]]], clf: str, a: str, b: str) -> str:
    """'' when arms A and B of ``clf`` have run the same seeds, else which seeds each still lacks."""
    sa, sb = set(runs[(clf, a)]), set(runs[(clf, b)])
    gaps = [f"{arm} lacks seed(s) {', '.join(map(str, sorted(other - mine)))}"
            for arm, mine, other in ((a, sa, sb), (b, sb, sa)) if other - mine]
    return "; ".join(gaps)


# Added after the protocol, once every arm was in (so labelled so in the report): do the fakes beat, or add to, the
# audio-augmented copies, the other way of getting thousands of training images from the same clips?
AFTER_PROTOCOL_PAIRS = (("real+augmented", "real+synthetic"), ("real+augmented", "real+synthetic+augmented"))


def comparisons(ws: Workspace, runs: dict[tuple[str, str], dict[int, dict[str, Any]]]) -> str:
    """Every arm against real and against the best classic image preset, per classifier (classify compare), then
    AFTER_PROTOCOL_PAIRS."""
    lines = ["| classifier | A | B | B − A [95 % bootstrap CI] | p | per-seed B − A [t-interval over seeds] "
             "| seed pairs |",
             "|---|---|---|---|---|---|---|"]
    classifiers = sorted({c for c, _ in runs})
    for clf in classifiers:
        refs = ["real", best_image_preset(runs, clf)]
        for ref in (r for r in refs if r and (clf, r) in runs):
            for arm in (a for a in ARM_ORDER if (clf, a) in runs and a != ref and not (ref != "real" and a == "real")):
                lines.append(compare_row(ws, runs, clf, ref, arm))
    for clf in classifiers:
        for ref, arm in AFTER_PROTOCOL_PAIRS:
            if (clf, ref) in runs and (clf, arm) in runs:
                lines.append(compare_row(ws, runs, clf, ref, arm, " (after the protocol)"))
    return "\n".join(lines)


def compare_row(ws: Workspace, runs: dict[tuple[str, str], dict[int, dict[str, Any]]], clf: str, ref: str, arm: str,
                note: str = "") -> str:
    """One `classify compare` of arm B against A for one classifier, as a table row (its outputs go to compare/)."""
    from classify.compare import compare_runs, load_run, seed_cell, select, summary_line, write_outputs

    missing = missing_seeds(runs, clf, ref, arm)
    if missing:  # a pairing on fewer seeds would be a different comparison from the table's
        return f"| {clf} | {ref} | {arm}{note} | not compared yet: {missing} | – | – | – |"
    arch, mode = clf.split()
    pick = lambda a: [load_run(d, mdl) for d, mdl in select(ws, f"arm={a},arch={arch},mode={mode}")]
    r = compare_runs(pick(ref), pick(arm))
    write_outputs(ws, r, f"{PREFIX}-{arch}-{mode}-{arm}-vs-{ref}".replace("~", "_"))
    print(summary_line(r))
    lo, hi = r["ci95"]
    return (f"| {clf} | {ref} | {arm}{note} | {r['diff']:+.3f} [{lo:+.3f}, {hi:+.3f}] | {r['p_value']:.3g} | "
            f"{seed_cell(r)} | {r['n_pairs']} |")


def gan_table(ws: Workspace, chosen: dict[str, dict[str, Any]]) -> tuple[str, dict[str, list[tuple[float, float]]]]:
    """Per class: kimg reached, sec/kimg, FID at start / best (kimg) / newest, the kimg of the snapshot the fakes came
    from (``chosen``: generated()), and the FID curve."""
    curves: dict[str, list[tuple[float, float]]] = {}
    lines = ["| class | run | kimg reached | sec/kimg (median tick) | FID at 0 | best FID (kimg) | newest FID | "
             "fakes from (kimg) |", "|---|---|---|---|---|---|---|---|"]
    for stats in sorted(ws.root.glob("runs/*/*/stats.jsonl")):
        cls = stats.parent.parent.name
        if cls.startswith("_"):
            continue
        recs = [json.loads(line) for line in stats.read_text(encoding="utf-8").splitlines() if line.strip()]
        fid = [(r["kimg"], r["metrics"]["fid"]) for r in recs if r.get("metrics", {}).get("fid") is not None]
        curves[f"{cls} ({stats.parent.name[:5]})"] = fid
        if not recs:
            continue
        best = min(fid, key=lambda t: t[1]) if fid else None
        cells = [cls, stats.parent.name, f"{recs[-1]['kimg']:.1f}",
                 f"{np.median([r['sec_per_kimg'] for r in recs[1:]] or [np.nan]):.1f}",
                 f"{fid[0][1]:.1f}" if fid else "–", f"{best[1]:.1f} ({best[0]:.0f})" if best else "–",
                 f"{fid[-1][1]:.1f}" if fid else "–",
                 f"{kimg:.1f}" if isinstance(kimg := chosen.get(cls, {}).get("kimg"), (int, float)) else "–"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines), curves


def novelty_table(ws: Workspace) -> str:
    path = ws.root / "synthetic" / "_novelty" / "novelty.json"
    if not path.is_file():
        return "(no novelty check yet)"
    d = json.loads(path.read_text(encoding="utf-8"))
    lines = ["| class | fakes | near-copies |", "|---|---|---|"]
    for cls, c in sorted(d["classes"].items()):
        lines.append(f"| {cls} | {c.get('fakes', '–')} | {c.get('near_copies', '–')} |")
    return "\n".join(lines)


def figures(ws: Workspace, curves: dict[str, list[tuple[float, float]]], chosen: dict[str, dict[str, Any]],
            img_dir: Path) -> list[Path]:
    """FID curves (PNG) and small JPEG grids of reals and of the fakes each class's generator gave."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    img_dir.mkdir(parents=True, exist_ok=True)
    out = []
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, pts in curves.items():
        if pts:
            ax.plot(*zip(*pts), marker=".", label=name)
    ax.set(xlabel="kimg", ylabel="FID", title="4Q-small 64 px: FID per snapshot\n"
           "(efficientnet-lite0 features, 1000 fakes vs the class's train+val reals)")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    out.append(img_dir / f"{PREFIX}-fid.png")
    fig.savefig(out[-1], dpi=110)
    plt.close(fig)
    for run in sorted(p for p in ws.root.glob("runs/*/*") if (p / "reals.png").is_file()):
        cls = run.parent.name
        fakes = sorted(run.glob("fakes*.png"))
        # the fakes the classifiers saw (augment generate's grid, from the chosen snapshot); before generate has run,
        # the training run's newest grid, named so that it is not mistaken for the chosen one
        grid = chosen.get(cls, {}).get("grid")
        picked = ("fakes", ws.synthetic_dir / Path(str(grid)).name) if grid \
            else ("fakes-newest", fakes[-1] if fakes else None)  # .name: the record names a file of that folder
        for label, src in (("reals", run / "reals.png"), picked):
            if src is not None and src.is_file():
                im = Image.open(src).convert("RGB")
                im.thumbnail((512, 512))
                out.append(img_dir / f"{PREFIX}-{cls}-{label}.jpg")
                im.save(out[-1], quality=80)
    return out


def generated(ws: Workspace) -> dict[str, dict[str, Any]]:
    """Per class, what `augment generate` recorded (snapshot, kimg, grid), or {} before it has run."""
    from augment.synthetic import read_record  # bounded and format-checked

    classes = (read_record(ws.synthetic_dir) or {}).get("classes")
    return {c: e for c, e in classes.items() if isinstance(e, dict)} if isinstance(classes, dict) else {}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workspace")
    ap.add_argument("--compare", action="store_true", help="run the paired comparisons (classify compare)")
    ap.add_argument("--out", type=Path, default=None, help="docs folder: figures go to OUT/img/")
    args = ap.parse_args(argv)
    try:
        ws = Workspace.load(args.workspace)
        runs = newest_per_seed(ws)
        chosen = generated(ws)
        gans, curves = gan_table(ws, chosen)
        parts = ["## GANs", gans, "", "## Novelty", novelty_table(ws), "", "## Arms", arm_table(runs), ""]
        if args.compare:
            parts += ["## Paired comparisons", comparisons(ws, runs), ""]
        if args.out is not None:
            parts += ["## Figures", *(f"- {p}" for p in figures(ws, curves, chosen, args.out / "img")), ""]
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = ws.results_dir / f"report-{PREFIX}.md"
    atomic_write_text(report, "\n".join(parts))
    print(f"report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
