"""python -m minitorchnn: the command line (cli.py)."""
from .cli import main

raise SystemExit(main())
