import sys

from infergraph.cli.main import main

sys.exit(main())
