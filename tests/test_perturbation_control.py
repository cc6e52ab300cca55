"""bench/perturbation_control.py: the null model is the base plus a random update of the trained
update's size, rank and place."""

import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

SCRIPT = Path(__file__).parents[1] / "bench" / "perturbation_control.py"


def _checkpoint(folder: Path, tensors: dict[str, torch.Tensor]) -> Path:
    folder.mkdir()
    save_file(tensors, folder / "model.safetensors")
    (folder / "config.json").write_text('{"model_type": "qwen2"}')
    return folder


def test_the_null_update_has_the_trained_updates_norm_rank_and_place(tmp_path):
    generator = torch.Generator().manual_seed(1)
    base = {"q.weight": torch.randn(40, 30, generator=generator), "norm.weight": torch.ones(30),
            "embed.weight": torch.randn(50, 30, generator=generator)}
    lora_a, lora_b = torch.randn(4, 30, generator=generator), torch.randn(40, 4, generator=generator)
    trained = {**base, "q.weight": base["q.weight"] + 1e-3 * lora_b @ lora_a,  # a rank-4 update
               "norm.weight": base["norm.weight"] + 1e-4 * torch.randn(30, generator=generator)}
    base_dir, trained_dir = _checkpoint(tmp_path / "base", base), _checkpoint(tmp_path / "trained", trained)

    outputs = []
    for name, seed in (("a", "0"), ("b", "0"), ("c", "1")):
        result = subprocess.run([sys.executable, str(SCRIPT), "--base", str(base_dir), "--trained", str(trained_dir),
                                 "--rank", "4", "--seed", seed, "-o", str(tmp_path / name)],
                                capture_output=True, text=True, check=True)
        assert "tensors changed by training: 2 of 3" in result.stdout
        outputs.append(load_file(tmp_path / name / "model.safetensors"))
    null, same_seed, other_seed = outputs

    assert torch.equal(null["embed.weight"], base["embed.weight"])  # training left it alone: so does the null
    for name in ("q.weight", "norm.weight"):
        update, trained_update = null[name] - base[name], trained[name] - base[name]
        assert torch.allclose(update.norm(), trained_update.norm(), rtol=1e-3)
        assert not torch.allclose(update, trained_update)  # a random direction, not the trained one
    assert torch.linalg.matrix_rank(null["q.weight"] - base["q.weight"], rtol=1e-3) == 4
    assert all(torch.equal(null[name], same_seed[name]) for name in null)
    assert not torch.equal(null["q.weight"], other_seed["q.weight"])
    assert (tmp_path / "a" / "config.json").read_text() == '{"model_type": "qwen2"}'
