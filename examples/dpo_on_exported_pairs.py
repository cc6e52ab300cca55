"""Train a model with TRL's DPOTrainer on pairs exported by `rro pairs export` (no rro code here).

    python examples/dpo_on_exported_pairs.py PAIRS_DIR --model MODEL -o OUT [--max-steps 1] [--limit 8]

PAIRS_DIR is the export's folder (or a Hub dataset id). The `prompt`, `chosen` and `rejected`
columns are TRL's conversational preference format, so DPOTrainer takes them as they are.
"""

import argparse

from datasets import load_dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import DPOConfig, DPOTrainer

parser = argparse.ArgumentParser()
parser.add_argument("pairs", help="the export's folder (README.md, data/*.parquet) or a Hub dataset id")
parser.add_argument("--model", required=True, help="the model to train, usually the SFT model that was explored")
parser.add_argument("-o", "--output", required=True)
parser.add_argument("--max-steps", type=int, default=-1, help="optimizer steps (-1: one epoch)")
parser.add_argument("--limit", type=int, default=None, help="train on the first N pairs only")
args = parser.parse_args()

pairs = load_dataset(args.pairs, split="train")
if args.limit:
    pairs = pairs.select(range(args.limit))
pairs = pairs.select_columns(["prompt", "chosen", "rejected"])  # the rest says where each pair came from

tokenizer = AutoTokenizer.from_pretrained(args.model)
model = AutoModelForCausalLM.from_pretrained(args.model)
config = DPOConfig(
    output_dir=args.output,
    max_steps=args.max_steps,
    per_device_train_batch_size=2,
    learning_rate=1e-5,
    beta=0.1,
    logging_steps=1,
    save_strategy="no",
    report_to="none",
    use_cpu=True,  # TRL turns bf16 on by default, which fails without a GPU; drop it on a GPU machine
)
trainer = DPOTrainer(model=model, args=config, train_dataset=pairs, processing_class=tokenizer)
result = trainer.train()
trainer.save_model(args.output)
print(f"trained {result.global_step} step(s) on {len(pairs)} pairs, loss {result.training_loss:.4f} -> {args.output}")
