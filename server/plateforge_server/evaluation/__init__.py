"""Measuring tools against exact ground truth (bench/quality.py and bench/training.py use these).

One module per tool: :mod:`.cleanup` scores paint-out methods on a synthetic shot.
"""
