"""Check: the static checks of a folder (files, schema, sizes, code; folder.py) and its claims against
its logs (claims.py; the score claims in score_claims.py, provenance in provenance.py, what they share in
context.py); for `harness ci`, what a pull request changes (changes.py, read
with git by repository.py). No code of the submission is executed.

May import: the core and submission.
"""
