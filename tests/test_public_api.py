import subprocess
import sys
from pathlib import Path

import isrc_resolver


def test_all_is_sorted_and_importable() -> None:
    names = isrc_resolver.__all__
    # isort-style, as ruff's RUF022 keeps it: CONSTANTS, then Classes, then functions.
    assert names == sorted(names, key=lambda n: (not n.isupper(), not n[0].isupper(), n))
    for name in names:
        assert getattr(isrc_resolver, name) is not None


def test_only_io_imports_pandas_and_only_client_imports_aiohttp() -> None:
    package = Path(isrc_resolver.__file__).parent
    for path in package.glob("*.py"):
        if path.name != "client.py":
            text = path.read_text()
            assert "import aiohttp" not in text and "from aiohttp" not in text, path.name
    # Importing the library does not drag in pandas: only tables and files need it.
    code = "import sys, isrc_resolver; print('pandas' in sys.modules, 'pyarrow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
