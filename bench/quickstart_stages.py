"""The quickstart's time stage by stage, and the SFT levers side by side, in one run.

1. `--run RUN`: the stages of a finished `rro run` (RUN/stages/*.json): wall seconds, the process's
   CPU seconds and the machine's load average when the stage ended (where the run recorded them). On
   a machine shared with other work, wall time grows with the load; CPU seconds much less so.
2. `--data EXPERTS`: SFT on the same records under each lever, one after another in this process,
   with tokens per wall second and per CPU second and the ratio to the first row. The levers: the LM
   head only where loss is taken (rro's default) against every position, bf16 autocast against fp32
   (what a CPU without AVX-512 BF16 gets: bf16 matmuls there run ~80x slower), LoRA, padding-free
   batches (no pad tokens), a larger micro-batch. Tokens are the records' real tokens (no padding).
   Also printed: the padding a batch of the quickstart's size carries on these records.

    python bench/quickstart_stages.py --run runs/quickstart --data runs/quickstart/experts.jsonl [--records 8]

Every variant trains the same records for one epoch from the same model and seed; compare ratios
within one run (the load of a shared machine moves absolute figures), and see the load printed
beside each row.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path

from rro.config import SftConfig
from rro.cpu import sleep_while_waiting
from rro.terminal import quiet_libraries

# name -> (SftConfig settings, LM head on loss positions only, padding-free batches)
LEVERS = {
    "full FT, bf16 autocast, LM head on loss positions": ({}, True, False),
    "LM head on every position": ({}, False, False),
    "fp32 (CPUs without AVX-512 BF16)": ({"precision": "fp32"}, True, False),
    "LoRA r=16": ({"lora": True}, True, False),
    "fp32 + LoRA r=16": ({"precision": "fp32", "lora": True}, True, False),
    "padding-free batches": ({}, True, True),
    "micro-batch 4 (not 2)": ({"batch_size": 4, "gradient_accumulation_steps": 1}, True, False),
}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def stage_table(run: Path) -> None:
    print(f"stages of {run}")
    print(f"{'stage':22} {'wall s':>8} {'CPU s':>8} {'load (1 min) at end':>20}  machine")
    total = 0.0
    for marker in sorted((run / "stages").glob("*.json"), key=lambda path: path.stat().st_mtime):
        record = json.loads(marker.read_text())
        total += record.get("seconds", 0.0)
        cpu = record.get("cpu_seconds")
        print(f"{marker.stem:22} {record.get('seconds', 0.0):8.1f} {cpu if cpu is not None else '-':>8} "
              f"{record.get('load', '-'):>20}  {_machine(record.get('machine'))}")
    print(f"{'all stages':22} {total:8.1f}\n")


def _machine(machine: dict | None) -> str:
    if machine is None:  # a marker written before rro recorded where stages ran
        return "-"
    return f"{machine['cpu']}, {machine['cores']} cores, native bf16: {'yes' if machine['native_bf16'] else 'no'}"


def padding_waste(lengths: list[int], batch: int, rounds: int = 200) -> float:
    """Pad tokens per real token for random batches of `batch` records (the trainer shuffles)."""
    rng, padded = random.Random(0), []
    for _ in range(rounds):
        order = rng.sample(lengths, len(lengths))
        batches = [order[i:i + batch] for i in range(0, len(order), batch)]
        padded.append(sum(max(b) * len(b) for b in batches) / sum(lengths) - 1)
    return statistics.fmean(padded)


def compact_lm_head(on: bool) -> None:
    """rro's compaction of TRL's LM head (rro.train.common.score_loss_positions_only), on or off."""
    import trl.trainer.utils as trl_utils
    from trl.kernels.chunked_logprob import _use_triton

    from rro.train.common import score_loss_positions_only

    if on:
        score_loss_positions_only()
    else:
        trl_utils._use_triton = _use_triton


def run_lever(name: str, settings: dict, compact: bool, padding_free: bool, data: Path, records: int, model: str,
              out: Path) -> dict:
    import rro.train.sft as sft_module

    config = SftConfig(model=model, data=[data], output=out, limit=records, epochs=1, batch_size=2,
                       gradient_accumulation_steps=2, save_steps=10_000, logging_steps=1, **settings)
    original = sft_module.trainer_arguments
    if padding_free:
        sft_module.trainer_arguments = lambda *args: {**original(*args), "padding_free": True}
    try:
        compact_lm_head(compact)
        # build_trainer calls score_loss_positions_only itself: undo it after, for the uncompacted row
        trainer, tokenizer, _template, details = sft_module.build_trainer(config)
        compact_lm_head(compact)
        tokens = sum(sft_module.token_count(tokenizer, c) for c in sft_module.load_conversations(config))
        load_before, cpu_before, wall_before = load(), cpu_seconds(), time.perf_counter()
        result = trainer.train()
        wall, cpu = time.perf_counter() - wall_before, cpu_seconds() - cpu_before
    finally:
        sft_module.trainer_arguments = original
        compact_lm_head(True)
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    row = {"lever": name, "records": details["records"], "tokens": tokens, "wall_s": round(wall, 1),
           "cpu_s": round(cpu, 1), "load_before": load_before, "load_after": load(),
           "first_loss": losses[0] if losses else None, "train_loss": result.metrics.get("train_loss")}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, help="a finished `rro run` folder (its stages/*.json)")
    parser.add_argument("--data", type=Path, help="expert trajectories (the run's experts.jsonl)")
    parser.add_argument("--records", type=int, default=8)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--levers", nargs="*", choices=list(LEVERS), default=list(LEVERS))
    args = parser.parse_args()
    sleep_while_waiting()  # as the CLI does, before torch is imported
    quiet_libraries()
    from rro.policy.hf import cpu_description, cpu_supports_bf16

    print(f"CPU: {cpu_description()}; native bf16: {cpu_supports_bf16()}; cores: {os.cpu_count()}; load now: {load()}\n")
    if args.run:
        stage_table(args.run)
    if not args.data:
        return

    from transformers import AutoTokenizer

    from rro.policy.models import resolve_model
    from rro.jsonl import read_jsonl

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(args.model))
    lengths = [len(tokenizer.apply_chat_template(r["messages"], tokenize=True, return_dict=True)["input_ids"])
               for r in read_jsonl(args.data)]
    print(f"{len(lengths)} records, {statistics.fmean(lengths):.0f} tokens on average ({min(lengths)}-{max(lengths)}); "
          f"pad tokens per real token, random batches of 2: {padding_waste(lengths, 2):.1%}, of 4: "
          f"{padding_waste(lengths, 4):.1%}\n")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.levers:
            settings, compact, padding_free = LEVERS[name]
            try:
                rows.append(run_lever(name, settings, compact, padding_free, args.data, args.records, args.model,
                                      Path(tmp) / str(len(rows))))
            except Exception as err:  # a lever this stack refuses is a finding, not the end of the bench
                print(json.dumps({"lever": name, "failed": f"{type(err).__name__}: {err}"[:300]}), flush=True)
    if not rows:
        return
    base = rows[0]
    print(f"\n{'lever':50} {'tok/s':>7} {'tok/CPU-s':>9} {'vs first (wall)':>15} {'(CPU)':>6} {'load':>15}")
    for row in rows:
        wall_rate, cpu_rate = row["tokens"] / row["wall_s"], row["tokens"] / row["cpu_s"]
        print(f"{row['lever']:50} {wall_rate:7.1f} {cpu_rate:9.1f} "
              f"{wall_rate / (base['tokens'] / base['wall_s']):15.2f} {cpu_rate / (base['tokens'] / base['cpu_s']):6.2f} "
              f"{row['load_after']:>15}")


if __name__ == "__main__":
    main()
