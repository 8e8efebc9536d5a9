"""Pieces several test modules share: the repository's and the development data's paths, a
device on a real pseudo-terminal, protocol strategies and version 1.0 frames, training options.

Test modules import these as ``helpers.<module>`` (pyproject puts tests/ on pytest's path);
no test module imports another.
"""
