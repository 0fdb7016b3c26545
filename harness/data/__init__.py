"""Data: the shard format and manifests, building, verifying and downloading datasets, the bundled
example corpus, byte accounting, and where datasets are found.

May import: the core (rules, errors, findings, schemas, progress). Never imports a submission.
"""
