"""The guard's training recipe: data splits (train.py), our own prompts (hard_negatives.py), fine-tuning
(finetune.py), and the held-out evaluation sets with their overlap check (heldout.py, overlap.py, eval/).

Run from the repository root: `make guard-model`, or `python -m training.guard.train` for the splits only.
Nothing here ships in the wheel or the .deb; the run-time guard is homefire/guard/.
"""
