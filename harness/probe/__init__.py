"""Probe: the black-box legality test. On a validation stream drawn from a known distribution D, no
causal, normalised evaluation can report a loss significantly below D's own code length; a script that
does saw or trained on its targets, or scored an unnormalised distribution (../shared/DESIGN.md).

streams.py (D: unigram, Markov or uniform, exact entropy rate), split.py (the probe dataset: training
shards linked, the stream as the validation split, a manifest), shortening.py (cutting training short),
bound.py (the test and its false-alarm rate), judge.py (findings). pipeline.probe runs the script and
the trusted self-check through reproduce and hands the results here as plain data.

May import: the core, data (shards) and submission (log metrics). Never imports a submission, torch, or
another stage.
"""
