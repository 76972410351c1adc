import sys

from huishou.cli import main

sys.exit(main())
