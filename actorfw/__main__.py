"""``python -m actorfw`` runs the ``actorfw`` command."""

import sys

from actorfw.cli import main

sys.exit(main())
