"""Python 3.12 f-strings (PEP 701) are rewritten so that older parsers read the records that use them."""

from __future__ import annotations

import ast

from harness.compliance.fstrings import downlevel

PEP701 = '''def report(categories, x, width):
    for cat in sorted(categories):log(f"  {cat}: {", ".join(sorted(categories[cat]))}")
    s = f"{x=} {x!r:>{width}} {f"{x:.3f}"} {{literal}}"
    t = f"""a
{x["k"]}
b"""
    return s, t
'''


def test_pep701_source_parses_after_rewriting_with_lines_kept() -> None:
    rewritten = downlevel(PEP701)
    assert rewritten is not None
    assert len(rewritten.splitlines()) == len(PEP701.splitlines())
    tree = ast.parse(rewritten)
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert {"cat", "categories", "x", "width", "log", "sorted"} <= names


def test_expressions_survive_as_str_calls() -> None:
    rewritten = downlevel('y = f"{a}-{b:{w}}"\n')
    assert ast.dump(ast.parse(rewritten)) == ast.dump(ast.parse("y = (str(a) + '-' + str(b) + str(w))\n"))


def test_unterminated_text_is_refused_not_guessed() -> None:
    assert downlevel('x = f"{a\n') is None
