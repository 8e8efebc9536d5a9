"""The training commands' fixed sets and defaults, in a module that imports nothing.

The train-* commands parse their arguments before they import torch or scipy, so
that ``--help`` and argument errors answer at once. The parsers (``train.cli``) and
the modules that do the work read each of these values here, so each is defined once.
"""

from __future__ import annotations

SIDES = ("r", "l")
"""The legs a trial's columns name: right (``_r``) or left (``_l``)."""
KINEMATICS_CUTOFF_HZ = 6.0
"""Low-pass cutoff of the IK coordinates before they are differentiated."""
ANGLE_UNITS = ("degrees", "radians")
"""What an IK file's angles are in (--angles-in)."""
PRECISIONS = ("fp32", "bf16", "fp16")
"""Training precisions on a GPU (bf16/fp16: autocast; fp32 everywhere else)."""
MODES = ("pi", "supervised")
"""Label-free physics-informed training, or the supervised baseline on reference labels."""
LEG_CHOICES = ("both", "right", "left")
"""Which legs of each recorded trial train (--legs)."""
ARCHITECTURES = ("mjca_bigru", "bigru", "cnn_bigru")
"""The paper's network and its two baselines."""
LOSS_WEIGHTINGS = ("fixed", "augmented_lagrangian")
"""How the physics-informed loss weighs its terms."""
PAPER_LOSS_WEIGHTS = (3.0, 1000.0, 500.0)
"""The paper's weights of eq. (15), Section III-C2: dynamics w_d, effort w_p, bounds w_b."""
EPOCHS = 1000
"""The cap on training epochs; the convergence rule normally stops earlier."""
PATIENCE = 150
"""Epochs over which the validation physics loss must improve; 0 turns the rule off."""
MIN_IMPROVEMENT = 0.01
"""The relative improvement of the best validation physics loss the rule asks for."""
FORCE_KINDS = ("active", "total")
"""The muscle forces train-eval can score: the active (contractile) force or the total."""
EMG_BAND_HZ = (20.0, 450.0)
"""Band-pass of raw EMG before rectification, Hz."""
EMG_ENVELOPE_HZ = 6.0
"""Low-pass cutoff of the rectified EMG's envelope, Hz."""
