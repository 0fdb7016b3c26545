"""`harness run-seeds`: train the reference trainer or a submission once per seed (not built yet)."""

from harness.cli.not_implemented import not_implemented


def register(subparsers) -> None:
    parser = subparsers.add_parser("run-seeds", help="train the reference trainer or a submission once per seed (not implemented yet)")
    parser.set_defaults(handler=not_implemented("run-seeds", "the seed runner is not built yet"))
