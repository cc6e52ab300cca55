"""Training: thin layers over TRL's SFT and DPO trainers (`rro sft`, `rro dpo`)."""
