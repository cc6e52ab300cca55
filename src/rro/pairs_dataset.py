"""`rro pairs export`: preference pairs as a Hugging Face `datasets` dataset, with a dataset card.

`pairs.jsonl` already holds TRL's conversational preference columns (`prompt`, `chosen`,
`rejected` as lists of chat messages) beside rro's own (`task_id`, `step`, `q_chosen`, ...), so
`datasets` and TRL's `DPOTrainer` read it as it is. An export gathers the pairs of one or several
explorations into one dataset with a fixed schema, and says in its card what produced them: the
explored model, strategy, anchor, N, K, tasks and counts, and the licence of the data the prompts
quote. Written into OUT:

- `README.md`: the dataset card (YAML metadata the Hub reads, then the text);
- `data/train-00000-of-00001.parquet`: the pairs (`load_dataset(OUT)` or the Hub read these);
- `arrow/`: the same as a `DatasetDict` saved with `save_to_disk` (`load_from_disk(OUT / "arrow")`).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rro.config import ExploreConfig, value_when_absent
from rro.explore.records import read_pairs
from rro.folder_lock import ended_here

_MESSAGES = [{"role": "string", "content": "string"}]
# Column -> datasets type name. One schema for every strategy: outcome pairs' chosen and rejected
# are whole trajectories (several messages), step pairs' one message each; ipr and outcome pairs
# have no anchor and no previous value (null here).
COLUMNS: dict[str, Any] = {
    "prompt": _MESSAGES, "chosen": _MESSAGES, "rejected": _MESSAGES,
    "task_id": "string", "env": "string", "step": "int32",
    "q_chosen": "float64", "q_rejected": "float64", "prev_value": "float64",
    "strategy": "string", "anchor": "string",
    "method": "string",  # which exploration of the export the pair comes from (see the card)
    "model": "string",  # the model that was explored
}
PARQUET_FILE = "data/train-00000-of-00001.parquet"


@dataclass
class Exploration:
    """One `rro explore` output folder, and the name its pairs carry in the export."""

    name: str
    folder: Path

    def config(self) -> dict[str, Any]:
        return json.loads((self.folder / "config.json").read_text())

    def stats(self) -> dict[str, Any]:
        path = self.folder / "stats.json"
        return json.loads(path.read_text()) if path.exists() else {}


def _exploration_folder(folder: Path) -> bool:
    return (folder / "pairs.jsonl").is_file() and (folder / "config.json").is_file()


def find_explorations(sources: list[Path]) -> list[Exploration]:
    """The explorations named by `sources`: an `rro explore` folder is itself; an `rro run`
    directory (with results.json) gives every exploration of its methods, named after the method
    (and its iteration when a method has several)."""
    from rro.report import read_results

    found: list[tuple[Path, Exploration]] = []
    for source in sources:
        if _exploration_folder(source):
            name = f"{source.parent.parent.name}/{source.parent.name}" if source.name == "explore" else source.name
            found.append((source, Exploration(name, source)))
        elif (source / "results.json").is_file():
            for method in read_results(source)["methods"]:
                folders = method.get("explore", [])
                for iteration, folder in enumerate(folders, 1):
                    name = method["method"] if len(folders) == 1 else f"{method['method']}/iter{iteration}"
                    if not _exploration_folder(Path(folder)):
                        raise FileNotFoundError(f"{folder} (method {method['method']} of {source}) has no pairs.jsonl "
                                                "and config.json: has its exploration finished?")
                    found.append((source, Exploration(name, Path(folder))))
        else:
            raise FileNotFoundError(f"{source} is neither an exploration folder (pairs.jsonl, config.json from "
                                    "rro explore) nor a run directory (results.json from rro run)")
    names = [exploration.name for _, exploration in found]
    if len(set(names)) < len(names):  # two runs with the same methods: say which run each is from
        for source, exploration in found:
            exploration.name = f"{source.name}/{exploration.name}"
    if not found:
        raise FileNotFoundError(f"no exploration in {', '.join(map(str, sources))}")
    return [exploration for _, exploration in found]


def features():
    from datasets import Features, Value

    def feature(kind):
        return [{key: Value(value) for key, value in kind[0].items()}] if isinstance(kind, list) else Value(kind)

    return Features({name: feature(kind) for name, kind in COLUMNS.items()})


def pairs_dataset(explorations: list[Exploration]):
    """Every pair of the explorations as one `datasets.Dataset`, in the explorations' order."""
    from datasets import Dataset

    rows = []
    for exploration in explorations:
        model = exploration.config()["model"]
        for pair in read_pairs(exploration.folder):
            row = {name: pair.get(name) for name in COLUMNS}
            row.update(task_id=str(pair["task_id"]), method=exploration.name, model=model)
            rows.append(row)
    return Dataset.from_list(rows, features=features())


def summary(exploration: Exploration, pairs: int) -> dict[str, Any]:
    """What produced one exploration's pairs, for the card."""
    config, stats = exploration.config(), exploration.stats()
    return {
        "method": exploration.name, "env": config["env"], "model": config["model"], "strategy": config["strategy"],
        "anchor": config.get("anchor", "policy") if config["strategy"] in ("rising", "fixed") else "expert path",
        "rollouts": config["rollouts"], "max_candidates": config["max_candidates"],
        "rise_at_max": config.get("rise_at_max", value_when_absent(ExploreConfig.model_fields["rise_at_max"])),
        "split": config["split"], "limit": config.get("limit"),
        "tasks": stats.get("tasks"), "pairs": pairs,
        "candidates_per_step": (stats.get("candidates_per_step") or {}).get("mean"),
        "replayed_from": stats.get("replayed_from"),
    }


def _licences(envs: list[str]) -> list[tuple[str, str, str]]:
    from rro.envs import spec

    rows = []
    for env in envs:
        try:
            env_spec = spec(env)
            rows.append((env, env_spec.data_license, env_spec.data_license_note))
        except KeyError:  # an environment that is not installed here: its licence is not known here
            rows.append((env, "unknown", "(environment not installed where the pairs were exported)"))
    return rows


def dataset_card(summaries: list[dict[str, Any]], total: int) -> str:
    """The dataset card: YAML metadata (licence, size, the Parquet file as the train split), then text."""
    from huggingface_hub import DatasetCardData

    licences = _licences(sorted({s["env"] for s in summaries}))
    ids = sorted({licence for _, licence, _ in licences})
    size = "n<1K" if total < 1_000 else "1K<n<10K" if total < 10_000 else "10K<n<100K" if total < 100_000 else "n>100K"
    metadata = DatasetCardData(
        license=ids[0] if len(ids) == 1 else "other", task_categories=["text-generation"], language=["en"],
        tags=["rro", "dpo", "preference", "agents", "trl"], size_categories=[size], pretty_name="rro preference pairs",
        configs=[{"config_name": "default", "data_files": [{"split": "train", "path": PARQUET_FILE}]}],
    )
    na = "–"
    table = ["| method | env | model | strategy | anchor | N | K | ceiling rule | split (limit) | tasks | pairs | "
             "cand/step |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        cps = f"{s['candidates_per_step']:.2f}" if s["candidates_per_step"] is not None else na
        replayed = f" (replayed from {s['replayed_from']})" if s["replayed_from"] else ""
        table.append(f"| {s['method']} | {s['env']} | `{s['model']}` | {s['strategy']}{replayed} | {s['anchor']} | "
                     f"{s['rollouts']} | {s['max_candidates']} | {'on' if s['rise_at_max'] else 'off'} | "
                     f"{s['split']} ({s['limit'] or 'all'}) | {s['tasks'] if s['tasks'] is not None else na} | "
                     f"{s['pairs']} | {cps} |")
    body = f"""
# rro preference pairs

{total} preference pairs collected by rro (Reward Rising Optimization: Monte Carlo values of an
agent's next-action candidates; a pair where one candidate's value beats another's at the same
state), from {len(summaries)} exploration{'s' if len(summaries) != 1 else ''}:

{chr(10).join(table)}

N is the rollouts per value estimate, K the most candidates per step; `rising` stops at the first
candidate whose value rises above the state's, `fixed` always draws K, `ipr` and `outcome` pair the
expert against the policy. The `method` column says which exploration each pair comes from.

## Columns

- `prompt`, `chosen`, `rejected`: TRL's conversational preference format; `prompt` is the
  conversation up to the state (instruction, agent turns, observations), `chosen` and `rejected` one
  assistant turn each (whole trajectories for `outcome`). TRL's `DPOTrainer` reads them as they are.
- `task_id`, `env`, `step`: the task and the step of its walk where the pair was made.
- `q_chosen`, `q_rejected`: the two candidates' Monte Carlo values; `prev_value`: the bar the step
  had to rise above (null for ipr and outcome pairs).
- `strategy`, `anchor`, `method`, `model`: how and from which model the pair was explored.

## Use

```python
from datasets import load_dataset

pairs = load_dataset("THIS_FOLDER_OR_REPO", split="train")   # or load_from_disk("THIS_FOLDER/arrow")["train"]
```

## Source data and licence

The prompts quote the environments' task data:

{chr(10).join(f"- `{env}`: {licence}. {note}" for env, licence, note in licences)}
"""
    return f"---\n{metadata.to_yaml()}\n---\n{body.rstrip()}\n"


class PushError(RuntimeError):
    """The export is written, but the Hub could not be reached or refused it."""


def push(out: Path, repo: str) -> str:
    """Upload the card and the Parquet file to the dataset repository `repo`; return its address."""
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        api.create_repo(repo, repo_type="dataset", exist_ok=True)
        api.upload_folder(folder_path=out, repo_id=repo, repo_type="dataset", allow_patterns=["README.md", "data/*"],
                          commit_message="rro pairs export")
    # Whatever went wrong on the way (no network, refused token, the transport library's own
    # errors, which differ between huggingface_hub releases), the export on disk stands.
    except Exception as err:  # noqa: BLE001
        raise PushError(f"could not push to the Hugging Face Hub ({api.endpoint}, dataset {repo}): "
                        f"{type(err).__name__}: {err}. The export is saved in {out}; push it later with "
                        f"`hf upload {repo} {out} --repo-type dataset` where the Hub is reachable "
                        "(and `hf auth login` has been run)") from None
    return f"{api.endpoint}/datasets/{repo}"


def _remove_partials_of_ended_exports(out: Path) -> None:
    """Delete the partial folders beside `out` that exports killed midway left: this host's, of a
    pid that no longer runs (named `.OUT.partial-HOST-PID-RANDOM`; RANDOM has no '-')."""
    for path in out.parent.glob(f".{out.name}.partial-*"):
        host, _, pid = path.name[len(f".{out.name}.partial-"):].rpartition("-")[0].rpartition("-")
        if pid.isdigit() and ended_here(host, int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def export_pairs(sources: list[Path], out: Path) -> dict[str, Any]:
    """Write the pairs of `sources` (exploration folders or run directories) into `out`: card,
    Parquet and save_to_disk. `out` must not exist yet (or be empty); it appears whole or not at all."""
    from datasets import DatasetDict

    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty: export into a new folder")
    explorations = find_explorations(sources)
    dataset = pairs_dataset(explorations)
    counts = {exploration.name: 0 for exploration in explorations}
    for method in dataset["method"]:
        counts[method] += 1
    summaries = [summary(exploration, counts[exploration.name]) for exploration in explorations]

    # A folder of this export's own beside `out`, renamed onto it at the end: two exports into one
    # folder never write the same files, and the one that finishes second finds `out` taken.
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_partials_of_ended_exports(out)
    partial = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-{socket.gethostname()}-{os.getpid()}-", dir=out.parent))
    try:
        (partial / "data").mkdir()
        dataset.to_parquet(partial / PARQUET_FILE)
        DatasetDict({"train": dataset}).save_to_disk(partial / "arrow")
        (partial / "README.md").write_text(dataset_card(summaries, len(dataset)))
        try:
            if out.exists():
                out.rmdir()  # empty, checked above
            partial.rename(out)
        except OSError as err:
            if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            raise FileExistsError(f"{out} was filled by another export meanwhile: export into a new folder") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return {"pairs": len(dataset), "explorations": summaries, "output": str(out)}
