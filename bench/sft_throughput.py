"""SFT speed on this machine: `rro sft` on the same expert trajectories under several settings,
one after another in one run, with tokens/s and the ratio to the first setting.

Settings compared: precision (bf16 autocast with fp32 master weights, or fp32) and activation
checkpointing (on by default). Every variant trains the same records for the same number of
optimizer steps from the same model and seed; its tokens/s is TRL's `num_tokens / train_runtime`.

    python bench/sft_throughput.py --data runs/quickstart/experts.jsonl [--records 16] [--model smollm2-135m]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from rro.config import SftConfig
from rro.terminal import quiet_libraries
from rro.train.sft import sft

VARIANTS = {
    "bf16 + checkpointing (default)": {"precision": "auto", "activation_checkpointing": True},
    "bf16, no checkpointing": {"precision": "auto", "activation_checkpointing": False},
    "fp32 + checkpointing": {"precision": "fp32", "activation_checkpointing": True},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="expert trajectories (rro data experts)")
    parser.add_argument("--records", type=int, default=16)
    parser.add_argument("--model", default="smollm2-135m")
    args = parser.parse_args()
    quiet_libraries()  # rro's own output only, as the CLI shows it
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, settings in VARIANTS.items():
            config = SftConfig(model=args.model, data=[args.data], output=Path(tmp) / name.replace(" ", "_"),
                               limit=args.records, epochs=1, batch_size=2, gradient_accumulation_steps=2,
                               save_steps=10_000, **settings)
            record = sft(config)
            metrics = record["metrics"]
            rows.append((name, metrics["num_tokens"], metrics["train_runtime"]))
            print(json.dumps({"variant": name, "tokens": metrics["num_tokens"], "seconds": metrics["train_runtime"]}))
    base = rows[0][1] / rows[0][2]
    print(f"\n{'setting':34} {'tokens/s':>9} {'vs default':>10}")
    for name, tokens, seconds in rows:
        print(f"{name:34} {tokens / seconds:9.1f} {tokens / seconds / base:10.2f}")


if __name__ == "__main__":
    main()
