"""`harness eval`: re-evaluate an artifact with the trusted evaluator (not built yet)."""

from harness.cli.not_implemented import not_implemented


def register(subparsers) -> None:
    parser = subparsers.add_parser("eval", help="re-evaluate an artifact with the trusted evaluator (not implemented yet)")
    parser.set_defaults(handler=not_implemented("eval", "the trusted evaluator is not built yet"))
