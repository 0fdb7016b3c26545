"""Check: the static checks of a folder (files, schema, sizes, code; folder.py) and its claims against
its logs (claims.py, with provenance). No code of the submission is executed.

May import: the core and submission.
"""
