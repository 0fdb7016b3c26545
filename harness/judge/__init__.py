"""Judge: decisions on plain numbers, logged or measured: budgets, sizes, score agreement, significance.
Every judgement returns findings.

May import: the core (rules, checks, findings, stats). Never imports a submission, torch, or another
stage: the pipeline hands it plain data.
"""
