"""The media plane stands alone: it never imports the appliance."""

import ast
import subprocess
import sys
from pathlib import Path

MEDIA = Path(__file__).resolve().parents[2] / "media"


def test_media_sources_never_import_appliance() -> None:
    for path in MEDIA.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.split(".")[0] == "appliance" for n in names), path


def test_importing_media_loads_no_appliance_module() -> None:
    code = (
        "import sys, media, media.ice\n"
        "print(any(m.split('.')[0] == 'appliance' for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
