"""`python -m ssehub`: the `ssehub` command."""

import sys

from ssehub.entry import main

sys.exit(main())
