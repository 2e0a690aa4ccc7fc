"""`python -m hbnb` is the `hbnb` command."""

from __future__ import annotations

from hbnb.cli import main

raise SystemExit(main())
