"""Is a trained model's change in test reward more than any change of its size would make?

DPO on a few dozen pairs moves a checkpoint very little (compare-qwen: 0.028% of the weights'
norm), yet greedy decoding flips near-tied choices, so even a tiny update changes the reward of many
test tasks. This writes the null model for that: the base checkpoint plus a random update of the
trained one's size and shape — in every tensor the update changed, a seeded random matrix of the
update's rank (`--rank`, LoRA's r) scaled to the update's Frobenius norm; other tensors untouched.
Evaluate it as the trained model was evaluated: a trained model whose paired difference against the
base lies within the null models' spread is not distinguishable from a random step of its size.

    python bench/perturbation_control.py --base runs/compare-qwen/sft \\
        --trained runs/compare-qwen/rising/iter1/dpo --rank 16 --seed 0 -o runs/perturbed/seed0
    rro eval --model runs/perturbed/seed0 ...   # the trained model's own eval settings

Prints the update's relative norm (trained − base over base, all tensors) and the null's.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

WEIGHTS = "model.safetensors"


def random_update(delta: torch.Tensor, rank: int, generator: torch.Generator) -> torch.Tensor:
    """A random tensor with `delta`'s shape and Frobenius norm: of rank `rank` for a matrix (as a
    LoRA update is), dense otherwise (biases, norms)."""
    if delta.dim() == 2:
        rows, columns = delta.shape
        left = torch.randn(rows, rank, generator=generator, dtype=torch.float64)
        right = torch.randn(rank, columns, generator=generator, dtype=torch.float64)
        noise = left @ right
    else:
        noise = torch.randn(delta.shape, generator=generator, dtype=torch.float64)
    return (noise * (delta.double().norm() / noise.norm())).to(delta.dtype)


def perturbed(base: dict[str, torch.Tensor], trained: dict[str, torch.Tensor], rank: int, seed: int
              ) -> dict[str, torch.Tensor]:
    """`base` plus, for every tensor that `trained` changed, a random update of the change's norm."""
    if set(base) != set(trained):
        raise SystemExit(f"error: the checkpoints hold different tensors: {sorted(set(base) ^ set(trained))[:5]}")
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for name in sorted(base):  # a fixed order: the same seed gives the same model
        delta = trained[name] - base[name]
        out[name] = base[name] + random_update(delta, rank, generator) if delta.any() else base[name]
    return out


def relative_norm(changed: dict[str, torch.Tensor], base: dict[str, torch.Tensor]) -> float:
    """‖changed − base‖ / ‖base‖ over all tensors together (Frobenius)."""
    difference = sum(float((changed[name].double() - base[name].double()).square().sum()) for name in base)
    size = sum(float(base[name].double().square().sum()) for name in base)
    return (difference / size) ** 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, required=True, help="the checkpoint training started from")
    parser.add_argument("--trained", type=Path, required=True, help="the trained checkpoint (merged weights)")
    parser.add_argument("--rank", type=int, default=16, help="rank of each matrix's random update")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()

    base, trained = load_file(args.base / WEIGHTS), load_file(args.trained / WEIGHTS)
    null = perturbed(base, trained, args.rank, args.seed)
    args.output.mkdir(parents=True, exist_ok=True)
    for path in args.trained.iterdir():  # config, tokenizer, chat template: the trained model's own
        if path.is_file() and path.name != WEIGHTS and path.suffix in (".json", ".jinja", ".txt", ".model"):
            shutil.copy2(path, args.output / path.name)
    save_file(null, args.output / WEIGHTS, metadata={"format": "pt"})
    changed = sum(bool((trained[name] != base[name]).any()) for name in base)
    print(f"tensors changed by training: {changed} of {len(base)}")
    print(f"relative norm of the update: trained {relative_norm(trained, base):.3e}, "
          f"null (rank {args.rank}, seed {args.seed}) {relative_norm(null, base):.3e}")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
