import sys

from dropout_grader.cli import main

sys.exit(main())
