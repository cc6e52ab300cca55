"""What the terminal shows: rro's own progress, and the libraries' internals only when asked.

`rro` draws one rich display per stage (what runs, how far, running figures). The libraries it
drives have their own: `datasets` progress bars ("Tokenizing train dataset", "Flattening the
indices"), TRL's "Computing reference log probs" bar and printed metric dicts, transformers'
"Loading weights" bar, info logs and deprecation warnings. `quiet_libraries()` turns those off at
their source, through each library's own switch (its verbosity, its progress-bar setting, its
logger's level) and a warning filter that names one warning precisely. Nothing is redirected:
errors and tracebacks still print in full, and so does any Python warning not named here.

The switches are environment variables where the library reads one when it is imported (the CLI
imports the libraries lazily, so `rro --help` stays fast), and the library's function as well when
it is already imported (the Python API, tests). `rro -v` skips all this and shows the libraries'
logs at INFO level.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

# Read by the libraries at import time. `setdefault`: a user's own setting wins.
_QUIET_ENVIRONMENT = {
    "TRANSFORMERS_VERBOSITY": "error",  # transformers' logger
    "DATASETS_VERBOSITY": "error",  # datasets' logger
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",  # "Tokenizing train dataset", "Flattening the indices", ...
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # transformers' bars ("Loading weights") go through huggingface_hub's switch
    "HF_HUB_VERBOSITY": "error",
    # TRL's "Computing reference log probs" bar (DPO) reads this switch and no other.
    "TQDM_DISABLE": "1",
    # vLLM logs its engine's start-up and shutdown at INFO, from the engine's own processes too
    # (they inherit the environment); torch's C++ side warns about NUMA binding there.
    "VLLM_LOGGING_LEVEL": "ERROR",
    "TORCH_CPP_LOG_LEVEL": "ERROR",
    # Warnings raised in those spawned processes, where this process's filters do not reach.
    "PYTHONWARNINGS": "ignore:`torch.distributed.reduce_op` is deprecated:FutureWarning",
}

# Libraries that log through the standard `logging` module; Python prints their WARNING records to
# stderr when nobody configured logging. (sqlglot logs a warning for SQL it cannot carry over when
# transpiling an agent's query; the environment answers that query itself, with its own error.)
_QUIET_LOGGERS = ("trl", "accelerate", "peft", "sqlglot", "datasets", "transformers", "huggingface_hub", "vllm")

# Deprecation notices addressed to the libraries' authors, not to rro's users: (message regex, category).
_SILENCED_WARNINGS = (
    # transformers 5 deprecates the attribute that TRL 1.16 still reads while training.
    (r"`is_gradient_checkpointing` is deprecated", FutureWarning),
    # vLLM 0.32 touches this torch alias when it imports.
    (r"`torch.distributed.reduce_op` is deprecated", FutureWarning),
)

_verbose = False


def verbose() -> bool:
    """Whether the user asked for the libraries' own output (`rro -v`)."""
    return _verbose


def quiet_libraries() -> None:
    """Silence the libraries' logs, progress bars and the named warnings (see the module's text)."""
    for name, value in _QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    for message, category in _SILENCED_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    # Libraries imported before this call read their switches already: use their functions.
    if "transformers" in sys.modules:
        from transformers.utils import logging as transformers_logging

        transformers_logging.set_verbosity_error()
        transformers_logging.disable_progress_bar()
    if "datasets" in sys.modules:
        import datasets

        datasets.utils.logging.set_verbosity_error()
        datasets.disable_progress_bars()
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()


def show_library_logs() -> None:
    """`rro -v`: the libraries' INFO logs and progress bars, as they print them."""
    global _verbose
    _verbose = True
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "info")
    os.environ.setdefault("DATASETS_VERBOSITY", "info")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def configure(verbose: bool) -> None:
    """Set the terminal up once per command, before any library is imported."""
    global _verbose
    _verbose = False  # a command run earlier in this process (e.g. in tests) may have asked for it
    if verbose:
        show_library_logs()
    else:
        quiet_libraries()
