"""One module per resource family; ``resources.py`` serves every declarative kind."""
