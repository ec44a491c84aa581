import sys

from aitbc.cli import main

sys.exit(main())
