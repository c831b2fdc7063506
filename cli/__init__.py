"""``docchat``: the command line client of the docchat API (see ``docchat --help``)."""
