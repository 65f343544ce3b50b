"""``python -m tfemotion_client``: the ``tfemotion-query`` command."""

import sys

from tfemotion_client.cli import main

sys.exit(main())
