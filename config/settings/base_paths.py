"""Paths every settings module may need, free of import cycles."""

from pathlib import Path

from config import env

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env.text("ENTITLE_VAR_DIR", str(BASE_DIR / "var")))
