"""``python -m cli``: the same as the ``docchat`` command."""

from cli.main import app

app(prog_name="docchat")
