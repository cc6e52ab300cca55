"""A deterministic test environment with known action values, and a scripted policy.

Environment "toy": an action is any word; `submit` ends the episode with the reward of the last
word taken (from the task's table, 0 when none). Its expert takes the task's `expert` words (by
default its best word) and submits. A policy that always submits therefore gives
Q(s, word) = reward[word] exactly, and Q(s, submit) = reward[last word of s].

`ScriptedPolicy` draws exploration candidates (calls at the exploration temperature) from a fixed
list per state. In rollouts (calls at any other temperature) it submits at once, unless a rollout
script is given for the words taken so far: then the i-th rollout from there takes the script's
i-th word first (so rollout rewards vary, in a known order) and submits after it.
"""

from __future__ import annotations

from rro.envs.base import EnvSpec, StepResult, Task, register
from rro.envs.intercode_sql.spec import parse_action as sql_action
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


def toy_task(task_id: str, rewards: dict[str, float], expert: list[str] | None = None) -> Task:
    task = Task(env="toy", id=task_id, instruction=f"toy task {task_id}", fields={"rewards": rewards, "expert": expert})
    TASKS[task_id] = task
    return task


def _load_tasks(split="train", **_filters) -> list[Task]:
    return list(TASKS.values())


def _expert(task: Task):
    """The task's `expert` words when given (then submit), else its best word, then submit."""
    for word in task.fields.get("expert") or [max(task.fields["rewards"], key=task.fields["rewards"].get)]:
        yield turn(word)
    yield turn("submit")


register(EnvSpec(name="toy", make=ToyEnv, load_tasks=_load_tasks, expert=_expert, terminal_actions=frozenset({"submit"}),
                 instruction="A toy environment.", parse_action=sql_action))


class ScriptedPolicy:
    name = "scripted"

    def __init__(self, candidates: dict[tuple[str, tuple[str, ...]], list[str]],
                 rollout_scripts: dict[tuple[str, tuple[str, ...]], list[str]] | None = None):
        """candidates[(task id, words taken)] = the words drawn there, in order;
        rollout_scripts[(task id, words taken)] = the first word of each rollout from there, in order."""
        self.queues = {key: list(words) for key, words in candidates.items()}
        self.rollout_scripts = rollout_scripts or {}
        self.rollouts_started: dict[tuple, int] = {}
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
            state = self._state(conversation)
            if temperature == EXPLORE_T:
                word = self.queues[state].pop(0)
            elif state in self.rollout_scripts:
                index = self.rollouts_started.get(state, 0)
                self.rollouts_started[state] = index + 1
                word = self.rollout_scripts[state][index]
            else:
                word = "submit"
            results.append([Completion(turn(word), generated_tokens=3, prompt_tokens=7)] * n)
        return results
