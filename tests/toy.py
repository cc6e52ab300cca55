"""A deterministic test environment with known action values, and a scripted policy.

Environment "toy": an action is any word; `submit` ends the episode with the reward of the last
word taken (from the task's table, 0 when none). A policy that always submits therefore gives
Q(s, word) = reward[word] exactly, and Q(s, submit) = reward[last word of s].

`ScriptedPolicy` draws exploration candidates (calls at the exploration temperature) from a fixed
list per state, and always submits in rollouts (calls at any other temperature).
"""

from __future__ import annotations

from rro.agent import prompts
from rro.envs.base import EnvSpec, StepResult, Task, register
from rro.policy.base import Completion

EXPLORE_T = 1.0
ROLLOUT_T = 0.5


def turn(word: str) -> str:
    return "Thought: t\nAction: submit" if word == "submit" else f"Thought: t\nAction: ```sql\n{word}\n```"


class ToyEnv:
    name = "toy"

    def __init__(self, **_options):
        self.task: Task | None = None
        self.last = None

    def reset(self, task: Task) -> str:
        self.task, self.last = task, None
        return task.instruction

    def step(self, action: str) -> StepResult:
        if action == "submit":
            reward = self.task.fields["rewards"].get(self.last, 0.0) if self.last else 0.0
            return StepResult("done", reward, True, {})
        self.last = action
        return StepResult(f"took {action}", 0.0, False, {})

    def close(self) -> None:
        pass


TASKS: dict[str, Task] = {}


def toy_task(task_id: str, rewards: dict[str, float]) -> Task:
    task = Task(env="toy", id=task_id, instruction=f"toy task {task_id}", fields={"rewards": rewards})
    TASKS[task_id] = task
    return task


def _load_tasks(split="train", **_filters) -> list[Task]:
    return list(TASKS.values())


def _expert(task: Task):
    best = max(task.fields["rewards"], key=task.fields["rewards"].get)
    yield turn(best)
    yield turn("submit")


register(EnvSpec(name="toy", make=ToyEnv, load_tasks=_load_tasks, expert=_expert, terminal_actions=frozenset({"submit"})))
prompts.INSTRUCTIONS.setdefault("toy", "A toy environment.")


class ScriptedPolicy:
    name = "scripted"

    def __init__(self, candidates: dict[tuple[str, tuple[str, ...]], list[str]]):
        """candidates[(task id, words taken)] = the words drawn there, in order."""
        self.queues = {key: list(words) for key, words in candidates.items()}
        self.calls: list[tuple[float, int]] = []

    @staticmethod
    def _state(conversation) -> tuple[str, tuple[str, ...]]:
        task_id = conversation[0]["content"].rsplit("toy task ", 1)[1].split()[0]
        words = []
        for message in conversation[1:]:
            if message["role"] == "user" and message["content"].startswith("Observation: took "):
                words.append(message["content"].removeprefix("Observation: took "))
        return task_id, tuple(words)

    def generate(self, conversations, n=1, temperature=0.0, top_p=1.0, max_new_tokens=256, seed=None):
        self.calls.append((temperature, len(conversations)))
        results = []
        for conversation in conversations:
            if temperature == EXPLORE_T:
                word = self.queues[self._state(conversation)].pop(0)
            else:
                word = "submit"
            results.append([Completion(turn(word), generated_tokens=3, prompt_tokens=7)] * n)
        return results
