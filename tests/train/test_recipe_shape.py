"""The trainer is a recipe (issue 23): no class of kvcap.trainer keeps more than 20 attributes,
and every attribute is first set in `__init__` or in setup (`setup`, `_setup_*`), so what a
trainer holds can be read off those two places. Measured by AST, as tests/test_code_size.py."""

from __future__ import annotations

import ast
from pathlib import Path

TRAINER = Path(__file__).resolve().parents[2] / "src" / "kvcap" / "trainer"
MAX_ATTRIBUTES = 20
SETUP = ("__init__", "setup", "_setup")


def _self_targets(fn: ast.AST):
    for node in ast.walk(fn):
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else [])
        for target in targets:
            for elt in target.elts if isinstance(target, ast.Tuple) else [target]:
                if isinstance(elt, ast.Attribute) and isinstance(elt.value, ast.Name) and elt.value.id == "self":
                    yield elt.attr


def class_attributes(source: str) -> dict[str, tuple[int, list[str]]]:
    """class name -> (attributes it sets on self, those first set outside __init__ and setup)."""
    found = {}
    for cls in (n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ClassDef)):
        # a dataclass's fields are set by the __init__ it generates
        first = {n.target.id: "__init__" for n in cls.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
        methods = [f for f in cls.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]
        # __init__ and setup first: an attribute they set may be updated anywhere after
        for fn in sorted(methods, key=lambda f: not f.name.startswith(SETUP)):
            for attr in _self_targets(fn):
                first.setdefault(attr, fn.name)
        outside = sorted(a for a, where in first.items() if not where.startswith(SETUP))
        found[cls.name] = (len(first), outside)
    return found


def test_the_rule_sees_a_trainer_that_breaks_it():
    bad = "class T:\n    def __init__(self):\n        self.a = 1\n    def fit(self):\n        self.b = 2\n"
    assert class_attributes(bad) == {"T": (2, ["b"])}
    record = "class R:\n    a: int = 0\n    def bump(self):\n        self.a += 1\n"
    assert class_attributes(record) == {"R": (1, [])}
    many = "class M:\n    def __init__(self):\n" + "".join(f"        self.a{i} = {i}\n" for i in range(21))
    assert class_attributes(many)["M"][0] == 21


def test_trainer_classes_keep_few_attributes_all_set_up_front():
    modules = sorted(TRAINER.glob("*.py"))
    assert any(p.name == "loop.py" for p in modules)
    for path in modules:
        for name, (count, outside) in class_attributes(path.read_text(encoding="utf-8")).items():
            assert count <= MAX_ATTRIBUTES, f"{path.name}:{name} keeps {count} attributes (max {MAX_ATTRIBUTES})"
            assert not outside, f"{path.name}:{name} first sets {outside} outside __init__ and setup"


def test_the_recipe_lifecycle_is_there_in_one_file():
    from kvcap.trainer.loop import TrainRecipe

    for step in ("setup", "train", "save_checkpoint", "cleanup"):
        assert callable(getattr(TrainRecipe, step, None)), step
