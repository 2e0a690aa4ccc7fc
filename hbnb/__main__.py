"""`python -m hbnb` is the `hbnb` command."""

from hbnb.cli import main

raise SystemExit(main())
