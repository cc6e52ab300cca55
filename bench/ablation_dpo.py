"""What an ablation cell's pairs are worth: DPO from the SFT model on each chosen cell's pairs, then
every model evaluated greedily on the same test tasks, with each cell's paired difference against
the SFT model.

Cells come from `bench/explore_ablations.py`'s output (OUT/ablations.json): an explored cell's
pairs are its `pairs.jsonl`; a replayed cell's are exported from the recording
(rro.explore.replay.replayed_pairs) into OUT_DPO/<cell>/pairs.jsonl. DPO uses the same settings for
every cell. Each stage is resumable in its own folder (a finished one is read, not run again).

    python bench/ablation_dpo.py --sft runs/quickstart/sft --ablations runs/ablations \\
        --cells rising-expert-ceil-m0-value-N3-K5-continue fixed-expert-strict-m0-zero-N3-K5-continue \\
        [--test-tasks 100] [--epochs 1] [--policy-backend hf|vllm] [-o runs/ablation-dpo]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from rro.jsonl import read_jsonl, write_jsonl_atomic
from rro.config import DpoConfig, EvalConfig
from rro.envs.base import spec
from rro.evaluate import evaluate
from rro.explore.replay import ReplaySettings, read_recording, replay, replayed_pairs
from rro.pipeline import train_dpo_stage
from rro.policy import release_engines
from rro.report import interval
from rro.terminal import quiet_libraries


def cell_pairs(ablations: Path, cell: dict, out: Path) -> Path:
    """The pairs file of one cell of ablations.json, exported from its recording when replayed."""
    if not cell["replayed"]:
        return ablations / cell["cell"] / "pairs.jsonl"
    setting = cell["setting"]
    recording = next(ablations.glob("recording-*"))
    settings = ReplaySettings(cell["strategy"], setting["max_candidates"], setting["rollouts"], setting["margin"],
                              setting["rise_at_max"], setting["prev0"], setting["on_no_rise"])
    config, steps = read_recording(recording)
    path = out / "pairs.jsonl"
    write_jsonl_atomic(path, replayed_pairs(recording, replay(steps, settings, spec(config["env"]).reward_range), settings))
    return path


def evaluated(model: str, folder: Path, args) -> dict[str, float]:
    """Reward ×100 per test task of `model`, evaluating it unless `folder` already holds it."""
    config = EvalConfig(model=model, split="test", limit=args.test_tasks, max_steps=args.max_steps,
                        max_new_tokens=args.max_new_tokens, policy_backend=args.policy_backend, output=folder)
    if not (folder / "summary.json").exists():
        evaluate(config)
        release_engines()
    return {r["task_id"]: 100.0 * r["reward"] for r in read_jsonl(folder / "episodes.jsonl")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sft", required=True, help="the SFT checkpoint the ablation explored from")
    parser.add_argument("--ablations", type=Path, default=Path("runs/ablations"))
    parser.add_argument("--cells", nargs="+", required=True, help="cell names from ablations.json")
    parser.add_argument("--test-tasks", type=int, default=100)
    parser.add_argument("--max-steps", type=int, default=6)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--learning-rate", type=float, default=1e-5)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--sft-weight", type=float, default=1.0)
    parser.add_argument("--policy-backend", choices=["hf", "vllm"], default="hf")
    parser.add_argument("-o", "--output", type=Path, default=Path("runs/ablation-dpo"))
    args = parser.parse_args()
    quiet_libraries()  # rro's own output only, as the CLI shows it

    cells = {c["cell"]: c for c in json.loads((args.ablations / "ablations.json").read_text())["cells"]}
    unknown = [name for name in args.cells if name not in cells]
    if unknown:
        raise SystemExit(f"not in {args.ablations / 'ablations.json'}: {', '.join(unknown)}")
    baseline = evaluated(args.sft, args.output / "eval-sft", args)
    rows = []
    for name in args.cells:
        folder = args.output / name
        folder.mkdir(parents=True, exist_ok=True)
        pairs = cell_pairs(args.ablations, cells[name], folder)
        dpo = DpoConfig(model=args.sft, pairs=[pairs], epochs=args.epochs, learning_rate=args.learning_rate,
                        beta=args.beta, sft_weight=args.sft_weight, output=folder / "dpo")
        if not (dpo.output / "rro-train.json").exists():
            train_dpo_stage(dpo)
        rewards = evaluated(str(dpo.output), folder / "eval", args)
        common = sorted(set(rewards) & set(baseline))
        differences = [rewards[t] - baseline[t] for t in common]
        rows.append((name, sum(1 for _ in read_jsonl(pairs)), np.mean(list(rewards.values())), interval(differences, 2000),
                     float(np.mean(differences)), sum(d > 0 for d in differences), sum(d < 0 for d in differences)))

    print(f"\nSFT {args.sft}: {np.mean(list(baseline.values())):.1f} average reward ×100 on {len(baseline)} test tasks")
    print("| cell | pairs | avg reward ×100 | − SFT (95% paired CI) | better | worse |")
    print("|---|---|---|---|---|---|")
    for name, pairs, mean, (low, high), difference, better, worse in rows:
        print(f"| {name} | {pairs} | {mean:.1f} | {difference:+.1f} ({low:+.1f} to {high:+.1f}) | {better} | {worse} |")


if __name__ == "__main__":
    main()
