"""The architecture, as the imports show it: which part of tfemotion may use which.

Every ``import`` of tfemotion's modules is read off the source (those inside functions too) and
checked against the layers below, so that a change that breaks them fails here, naming the
module and the import.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "tfemotion"

# What each part may import, besides itself. A part is a subpackage or a top-level module.
ALLOWED = {
    "task": set(),
    "files": set(),
    "logs": set(),
    "colab": set(),
    "config": {"task"},
    "checkpoints": {"task"},
    "hardware": {"config"},
    # the classifiers a run saves (sentence encoder + head) and the one loader of saved models
    "models": {"task", "checkpoints"},
    "runfolder": {"config", "files", "task"},
    "tokenizers": set(),  # in-graph tokenizers: nothing else of tfemotion
    "data": {"config", "task", "checkpoints", "files"},
    "evaluation": {"config", "task", "checkpoints", "files", "runfolder", "data", "models"},
    "features": {"config", "task", "checkpoints", "files", "hardware", "data", "evaluation"},
    "training": {"config", "task", "checkpoints", "files", "hardware", "runfolder", "data",
                 "evaluation", "models"},
    "export": {"config", "task", "checkpoints", "files", "hardware", "runfolder", "data",
               "tokenizers", "models"},
    # tokenizers: the windows of long texts and their pooling, as the export's graph has them
    "prediction": {"task", "checkpoints", "files", "runfolder", "evaluation", "export",
                   "models", "tokenizers"},
    # the label audit: K trainings (training), their predictions (prediction), the report
    "audit": {"config", "task", "checkpoints", "files", "runfolder", "data", "training",
              "evaluation", "prediction"},
    "serving": {"config", "export"},  # the server runs exports; nothing of training or data
    # Beam workers need TensorFlow and the export's reader, nothing of transformers or training
    "scoring": {"config", "task", "export", "prediction"},
    "pipeline": {"config", "task", "checkpoints", "files", "runfolder", "data", "features",
                 "training", "evaluation", "export", "audit"},
    "cli": {"*"},
    "__init__": set(),
    "__main__": {"cli"},
}


def _part(module: str) -> str:
    """``tfemotion.data.loading`` -> ``data``; ``tfemotion.config`` -> ``config``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports() -> list[tuple[str, str, list[str], int]]:
    """(importing module, imported tfemotion module, names, line) for every import."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(("tfemotion", *path.relative_to(PACKAGE).with_suffix("").parts))
        module = module.removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                    and node.module.split(".")[0] == "tfemotion":
                found.append((module, node.module, [a.name for a in node.names], node.lineno))
            elif isinstance(node, ast.Import):
                found += [(module, a.name, [], node.lineno) for a in node.names
                          if a.name.split(".")[0] == "tfemotion" and a.name != "tfemotion"]
    return found


def test_every_part_imports_only_the_parts_below_it():
    wrong = []
    for module, imported, names, line in _imports():
        source, target = _part(module), _part(imported)
        if target == "__init__":  # `from tfemotion import __version__` and submodules
            targets = {name for name in names if name != "__version__"}
        else:
            targets = {target}
        allowed = ALLOWED[source] | {source}
        wrong += [f"{module}:{line} imports {imported} ({t})" for t in targets
                  if "*" not in allowed and t not in allowed]
    assert wrong == []


def test_every_part_has_a_layer():
    parts = {_part(module) for module, _, _, _ in _imports()}
    parts |= {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
              if p.suffix == ".py" or (p / "__init__.py").is_file()}
    assert parts <= set(ALLOWED)


def test_the_parts_import_each_other_without_a_circle():
    edges: dict[str, set[str]] = {}
    for module, imported, _, _ in _imports():
        source, target = _part(module), _part(imported)
        if source != target and target != "__init__":
            edges.setdefault(source, set()).add(target)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in edges.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    assert [part for part in edges if reaches(part, part, {part})] == []


def test_no_module_imports_a_private_name_of_another():
    private = [f"{module}:{line} imports {name} from {imported}"
               for module, imported, names, line in _imports() for name in names
               if name.startswith("_") and name != "__version__" and imported != module]
    assert private == []
