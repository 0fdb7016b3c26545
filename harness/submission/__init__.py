"""A submission folder as data: its files by kind (folder.py), submission.json, its logs parsed into
RunLog (logs.py), and the scores they state (scores.py). Reads files only; runs nothing.

May import: the core (rules, errors, stats).
"""
