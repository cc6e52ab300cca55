"""Draw one real reward-rising walk (docs/images/rising-walk.png), for the README and the concepts page.

The walk is read from the committed compare-large record (rising, policy anchor: SmolLM2-135M after
SFT, N = 2 rollouts, K = 3 candidates, ceiling rule on). Task 31 shows every case of the step rule
in five steps: steps where nothing rises (all candidates valued 0 against a bar of 0), a first
candidate that rises, a rise after two lower candidates (two pairs), and a `submit` at the top of
the reward range (the ceiling rule). The numbers drawn are written beside the figure
(rising-walk.json), which tests/test_readme.py checks against the record.

    python docs/scripts/walk_figure.py [--task 31]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WALKS = REPO / "docs" / "results" / "compare-large" / "record" / "rising" / "iter1" / "explore" / "walks.jsonl"
OUT = REPO / "docs" / "images"


def walk_data(task_id: str) -> dict:
    """What the figure shows of one walk: per step the bar and the candidates in the order drawn."""
    walk = next(w for line in WALKS.read_text().splitlines() if (w := json.loads(line))["task_id"] == task_id)
    rejected = {(pair["step"], pair["rejected"][0]["content"]) for pair in walk["pairs"]}
    steps = []
    for step in walk["steps"]:
        q = step["q_values"]
        # The rising candidate is the last one drawn; when none rose, the best (the first of equals).
        chosen = len(q) - 1 if step["rose"] else q.index(max(q))
        steps.append({
            "step": step["step"], "bar": step["prev_value"], "rose": step["rose"], "chosen": chosen, "q_values": q,
            "actions": step["candidate_actions"],
            "paired": [(step["step"], turn) in rejected for turn in step["candidate_turns"]],
        })
    return {"task_id": task_id, "instruction": walk["instruction"], "reward": walk["reward"], "pairs": len(walk["pairs"]),
            "steps": steps}


def draw(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4.4), dpi=100)
    for step in data["steps"]:
        x0, n = step["step"], len(step["q_values"])
        xs = [x0 + 0.16 * (k - (n - 1) / 2) for k in range(n)]
        ax.hlines(step["bar"], x0 - 0.33, x0 + 0.33, colors="0.35", linestyles="dashed", linewidth=1.2)
        for k, (x, q) in enumerate(zip(xs, step["q_values"])):
            if k == step["chosen"]:
                ax.scatter([x], [q], s=110, marker="o", color="#1b9e3e" if step["rose"] else "#e6a000", zorder=3)
            elif step["paired"][k]:
                ax.scatter([x], [q], s=80, marker="X", color="#c0392b", zorder=3)
                ax.annotate("", xy=(x, q), xytext=(xs[step["chosen"]], step["q_values"][step["chosen"]]),
                            arrowprops={"arrowstyle": "->", "color": "#c0392b", "lw": 1.0})
            else:
                ax.scatter([x], [q], s=45, marker="o", facecolors="none", edgecolors="0.45", zorder=3)
        at_top = step["rose"] and step["q_values"][step["chosen"]] <= step["bar"]  # only the ceiling rule lets it rise
        outcome = "rose at the top" if at_top else "rose" if step["rose"] else "none rose"
        ax.text(x0, 1.12, f"{n} drawn\n{outcome}", ha="center", fontsize=8.5)
        action = step["actions"][step["chosen"]]
        ax.text(x0, -0.22, action if len(action) <= 15 else action[:13] + "…", ha="center", fontsize=7.5,
                family="monospace", color="0.25")
    ax.set_xticks([s["step"] for s in data["steps"]], [f"step {s['step']}" for s in data["steps"]])
    ax.set_ylim(-0.3, 1.32)
    ax.set_ylabel("Q (mean reward of N rollouts)")
    ax.set_title(f"One reward-rising walk: InterCode-SQL task {data['task_id']}, final reward {data['reward']}, "
                 f"{data['pairs']} pairs", fontsize=10)
    handles = [
        plt.Line2D([], [], color="0.35", linestyle="dashed", label="bar: the previous step's value"),
        plt.Line2D([], [], marker="o", color="#1b9e3e", linestyle="", markersize=9, label="chosen: rose above the bar"),
        plt.Line2D([], [], marker="o", color="#e6a000", linestyle="", markersize=9, label="chosen: best, none rose"),
        plt.Line2D([], [], marker="X", color="#c0392b", linestyle="", markersize=8, label="rejected, paired (arrow)"),
        plt.Line2D([], [], marker="o", markerfacecolor="none", color="0.45", linestyle="", label="rejected, not paired"),
    ]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="31")
    args = parser.parse_args()
    data = walk_data(args.task)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "rising-walk.json").write_text(json.dumps(data, indent=1) + "\n")
    draw(data, OUT / "rising-walk.png")
    print(f"wrote {OUT / 'rising-walk.png'} and rising-walk.json")


if __name__ == "__main__":
    main()
