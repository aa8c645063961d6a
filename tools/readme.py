"""Write README.md from nbs/index.ipynb.

nbdev 2's `nbdev_readme` renders through Quarto, a binary that no package registry ships; this does the same job for
the front page with no extra tool: markdown cells as they are, code cells as ```python blocks with their text
output, cells marked `#| hide` left out. `make readme` runs it and `make test` checks README.md is up to date.
"""
import json, sys
from pathlib import Path

def render(nb_path: Path) -> str:
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    out = [f"<!-- generated from {nb_path.as_posix()} by tools/readme.py: edit the notebook, then `make readme` -->\n"]
    for cell in nb["cells"]:
        src = "".join(cell["source"]).strip("\n")
        lines = src.splitlines()
        directives = {l.strip() for l in lines if l.startswith("#|")}
        if "#| hide" in directives or not src: continue
        if cell["cell_type"] == "markdown":
            out.append(src + "\n")
            continue
        code = "\n".join(l for l in lines if not l.startswith("#|")).strip("\n")
        if "#| echo: false" not in directives and code: out.append(f"```python\n{code}\n```\n")
        for o in cell.get("outputs", []):
            text = o.get("text") or o.get("data", {}).get("text/plain")
            if text: out.append("```\n" + "".join(text).rstrip("\n") + "\n```\n")
    return "\n".join(out)

if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    target = root/"README.md"
    text = render(Path("nbs")/"index.ipynb" if (Path.cwd()/"nbs").exists() else root/"nbs"/"index.ipynb")
    if target.exists() and target.read_text(encoding="utf-8") == text: sys.exit(0)
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target}")
