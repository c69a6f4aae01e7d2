import sys

from sigmab.cli import main

sys.exit(main())
