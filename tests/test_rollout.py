"""The batched rollout engine: every active episode's turn in one policy call."""

import json

from typer.testing import CliRunner

from rro.cli import app
from rro.envs import make
from rro.envs.intercode_sql import load_tasks
from rro.envs.intercode_sql.expert import sql_turn, submit_turn
from rro.policy.base import Completion
from rro.rollout import EpisodeRequest, SamplingConfig, run_episodes


class ScriptedPolicy:
    """Answers each task with a fixed list of turns (keyed by the question), recording its calls."""

    name = "scripted"

    def __init__(self, scripts: dict[str, list[str]]):
        self.scripts = scripts
        self.calls: list[int] = []

    def generate(self, conversations, n=1, temperature=0.0, top_p=1.0, max_new_tokens=256, seed=None):
        self.calls.append(len(conversations))
        results = []
        for conversation in conversations:
            question = next(q for q in self.scripts if any(q in m["content"] for m in conversation))
            turn_index = sum(m["role"] == "assistant" for m in conversation)
            results.append([Completion(self.scripts[question][turn_index], generated_tokens=5, prompt_tokens=10)] * n)
        return results


def scripts_for(tasks, lengths):
    """Task i explores (length - 1) times, then runs its gold and submits."""
    scripts = {}
    for task, length in zip(tasks, lengths):
        explore = [sql_turn("look", "SHOW TABLES")] * (length - 2)
        scripts[task.instruction] = explore + [sql_turn("answer", task.fields["gold"]), submit_turn("done")]
    return scripts


def test_active_episodes_share_each_call_and_finish_independently():
    tasks = load_tasks("test")[:3]
    policy = ScriptedPolicy(scripts_for(tasks, [2, 4, 3]))
    finished = []
    episodes = run_episodes(
        [EpisodeRequest(t, tag=i) for i, t in enumerate(tasks)],
        policy,
        lambda: make("intercode-sql"),
        on_finished=lambda request, episode: finished.append(request.tag),
    )
    assert policy.calls == [3, 3, 2, 1]  # finished episodes drop out of the batch
    assert finished == [0, 2, 1]
    assert [e.task_id for e in episodes] == [t.id for t in tasks]  # results in request order
    assert all(e.reward == 1.0 and e.termination == "submitted" for e in episodes)
    assert [len(e.steps) for e in episodes] == [2, 4, 3]
    assert all(s.generated_tokens == 5 and s.prompt_tokens == 10 for e in episodes for s in e.steps)


def test_episodes_resume_from_a_prefix():
    task = load_tasks("test")[0]
    script = scripts_for([task], [3])[task.instruction]
    policy = ScriptedPolicy({task.instruction: script})
    (episode,) = run_episodes([EpisodeRequest(task, prefix=tuple(script[:2]))], policy, lambda: make("intercode-sql"))
    assert policy.calls == [1]  # only the last turn was generated
    assert episode.reward == 1.0 and [s.turn for s in episode.steps] == script


def test_many_rollouts_of_one_state_run_together():
    task = load_tasks("test")[0]
    script = scripts_for([task], [3])[task.instruction]
    policy = ScriptedPolicy({task.instruction: script})
    episodes = run_episodes([EpisodeRequest(task, prefix=(script[0],))] * 5, policy, lambda: make("intercode-sql"))
    assert policy.calls == [5, 5] and all(e.reward == 1.0 for e in episodes)


def test_tiny_model_episodes_end_to_end(tiny_policy):
    tasks = load_tasks("test")[:2]
    episodes = run_episodes(
        [EpisodeRequest(t) for t in tasks], tiny_policy, lambda: make("intercode-sql"),
        SamplingConfig(temperature=1.0, max_new_tokens=12, seed=0), max_steps=3, icl_shots=1,
    )
    for episode in episodes:
        assert episode.termination in ("submitted", "max_steps") and episode.done
        assert all(step.generated_tokens > 0 for step in episode.steps)
        assert episode.messages[-1]["role"] == "assistant"


def test_rro_eval_with_a_model(tmp_path, tiny_policy):
    out = tmp_path / "eval"
    args = ["eval", "--model", "tiny-random", "--limit", "3", "--max-steps", "2", "--max-new-tokens", "8",
            "--dtype", "float32", "-o", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tasks"] == 3 and summary["model"] == "tiny-random"
    assert summary["generated_tokens"] > 0 and summary["mean_steps"] <= 2
    records = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    assert len(records) == 3
    # Rerun: nothing left to do, no duplicates.
    assert CliRunner().invoke(app, args).exit_code == 0
    assert len((out / "episodes.jsonl").read_text().splitlines()) == 3
