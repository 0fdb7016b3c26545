"""`harness verify DIR`: rebuild, re-evaluate and judge a submission (not built yet)."""

from harness.cli.not_implemented import not_implemented


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "verify", help="reproduce a submission on GPUs and judge it (not implemented yet)",
        description="Rebuild the artifact, check size and time budgets, re-run the stride-64 evaluation "
                    "with the trusted evaluator, run the multi-seed t-test and the compliance scan.",
    )
    parser.add_argument("folder", help="submission folder")
    parser.set_defaults(handler=not_implemented(
        "verify", "reproduction on GPUs is the next stage; use `harness check DIR` for the static checks"))
