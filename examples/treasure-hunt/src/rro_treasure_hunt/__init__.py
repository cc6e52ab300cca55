"""Treasure hunt: a tiny text game with a known optimal policy, as an rro environment.

A treasure lies in a corridor of cells 0 .. width-1. The agent starts on another cell and moves
`left` or `right`; with hints on, each move is answered "warmer" (closer to the treasure) or
"colder". `dig` ends the game: 1.0 on the treasure's cell, less the farther away (at most 0.5).
Every (start, treasure) pair of cells is a task; the expert walks straight to the treasure and digs.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from rro.envs import EnvSpec, Example, ParsedAction, StepResult, Task

NAME = "treasure-hunt"
ACTIONS = ("left", "right", "dig")


class TreasureHuntOptions(BaseModel):
    """The game's settings: they become `--width` and `--hints` of every rro command."""

    model_config = ConfigDict(extra="forbid")

    width: int = Field(default=6, ge=2, le=40, description="Cells in the corridor (the tasks are every start/treasure pair).")
    hints: bool = Field(default=True, description="Answer each move with warmer or colder.")


def load_tasks(split: str = "test", width: int = 6) -> list[Task]:
    """Every (start, treasure) pair; one pair in four is a test task, the rest train."""
    if split not in ("train", "test", "all"):
        raise ValueError(f"unknown split {split!r}; choose train, test or all")
    tasks = []
    for number, (start, treasure) in enumerate((s, t) for s in range(width) for t in range(width) if s != t):
        if split == "all" or (split == "test") == (number % 4 == 0):
            tasks.append(Task(env=NAME, id=f"{start}-{treasure}",
                              instruction=f"The corridor has cells 0 to {width - 1}. You stand on cell {start}.",
                              fields={"start": start, "treasure": treasure, "width": width}))
    return tasks


class TreasureHuntEnv:
    """Deterministic given (task, actions): the state is the agent's cell."""

    name = NAME

    def __init__(self, hints: bool = True):
        self.hints = hints
        self.task: Task | None = None
        self.cell = 0
        self.done = False

    def reset(self, task: Task) -> str:
        self.task, self.cell, self.done = task, task.fields["start"], False
        return task.instruction

    def step(self, action: str) -> StepResult:
        if self.task is None:
            raise RuntimeError("call reset(task) before step(action)")
        if self.done:
            return StepResult("The game has ended.", 0.0, True, {"error": "episode already ended"})
        treasure, width = self.task.fields["treasure"], self.task.fields["width"]
        action = action.strip().lower()
        if action == "dig":
            self.done = True
            distance = abs(self.cell - treasure)
            reward = 1.0 if distance == 0 else round(0.5 * (1 - distance / (width - 1)), 2)
            found = "You found the treasure!" if distance == 0 else f"Nothing here; the treasure was on cell {treasure}."
            return StepResult(found, reward, True, {})
        if action not in ("left", "right"):
            return StepResult(f"Unknown action {action!r}: use left, right or dig.", 0.0, False, {"error": "unknown action"})
        before = abs(self.cell - treasure)
        target = self.cell + (1 if action == "right" else -1)
        if not 0 <= target < width:
            return StepResult(f"A wall. You are still on cell {self.cell}.", 0.0, False, {})
        self.cell = target
        hint = (" Warmer." if abs(self.cell - treasure) < before else " Colder.") if self.hints else ""
        return StepResult(f"You are on cell {self.cell}.{hint}", 0.0, False, {})

    def close(self) -> None:
        pass


def expert(task: Task):
    """The optimal policy: it knows the treasure's cell, walks straight there and digs."""
    cell, treasure = task.fields["start"], task.fields["treasure"]
    while cell != treasure:
        direction = "right" if treasure > cell else "left"
        yield f"Thought: The treasure is to the {direction}.\nAction: {direction}"
        cell += 1 if direction == "right" else -1
    yield "Thought: I am on the treasure's cell.\nAction: dig"


def split_table() -> tuple[list[str], list[list[str]]]:
    """`rro data splits treasure-hunt`: each split's tasks and how far the expert walks in them."""
    rows = []
    for split in ("train", "test", "all"):
        walks = [abs(task.fields["start"] - task.fields["treasure"]) for task in load_tasks(split)]
        rows.append([split, str(len(walks)), f"{sum(walks) / len(walks):.2f}", str(max(walks))])
    return ["split", "tasks", "mean walk to the treasure", "longest walk"], rows


def commands():
    """`rro treasure-hunt map TASK`: the game's own command, mounted on rro's command line."""
    import typer

    app = typer.Typer(help="Treasure hunt's own commands.", no_args_is_help=True)

    @app.command("map")
    def draw_map(task: str = typer.Argument(help="A task id, START-TREASURE (e.g. 2-5)."),
                 width: int = typer.Option(6, help="Cells in the corridor.")) -> None:
        """Draw a task's corridor: S where the agent starts, T where the treasure lies."""
        tasks = {t.id: t for t in load_tasks("all", width)}
        if task not in tasks:
            raise typer.BadParameter(f"no task {task!r} in a corridor of width {width}")
        cells = ["."] * width
        cells[tasks[task].fields["start"]], cells[tasks[task].fields["treasure"]] = "S", "T"
        print("".join(cells))

    return app


def parse_action(text: str) -> ParsedAction:
    """The first word after `Action:`: left, right or dig."""
    line, _, rest = text.strip().partition("\n")
    word, _, after = line.strip().partition(" ")
    if word.lower() not in ACTIONS:
        return ParsedAction(None, "the action must be left, right or dig")
    return ParsedAction(word.lower(), None, (after + rest).strip())


SPEC = EnvSpec(
    name=NAME,
    make=TreasureHuntEnv,
    load_tasks=load_tasks,
    expert=expert,
    terminal_actions=frozenset({"dig"}),
    instruction=(
        "You are hunting for a treasure buried in a corridor of cells. Each turn, write one line "
        "'Thought: ' with your reasoning, then 'Action: ' followed by left, right or dig. After a "
        "move you are told whether you came closer to the treasure (warmer) or not (colder). dig "
        "ends the game: digging on the treasure's cell scores 1, elsewhere less."
    ),
    format_help="Reply with 'Thought: <your reasoning>' and then 'Action: left', 'Action: right' or 'Action: dig'.",
    parse_action=parse_action,
    example=Example(
        observation="The corridor has cells 0 to 3. You stand on cell 1.",
        steps=(("Thought: Let me try the right.\nAction: right", "You are on cell 2. Colder."),
               ("Thought: Colder, so the treasure is to the left.\nAction: left", "You are on cell 1. Warmer."),
               ("Thought: Further left.\nAction: left", "You are on cell 0. Warmer."),
               ("Thought: Cell 0 is the end of the corridor, so the treasure is here.\nAction: dig", None)),
    ),
    reward_range=(0.0, 1.0),
    options=TreasureHuntOptions,
    task_options=("width",),
    split_table=split_table,
    commands={"treasure-hunt": commands},
    description="Find a treasure in a corridor by warmer/colder hints (an example plug-in).",
)
