"""A submission folder as data: its files by kind (folder.py), submission.json, its logs parsed into
RunLog (logs.py), the scores they state (scores.py), and which file is its script with what that runs
(script.py). Reads and parses files only; runs nothing.

May import: the core (rules, errors, stats).
"""
