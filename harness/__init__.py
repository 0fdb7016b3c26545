"""pgolf-harness: checks and verifies Parameter Golf submissions.

Does a submission folder hold what it claims, within the rules? Every answer carries its evidence.
"""

__version__ = "0.1.0"
