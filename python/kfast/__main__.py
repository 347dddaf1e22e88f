"""`python -m kfast`: the `kfast` command."""

from kfast._cli import main

raise SystemExit(main())
