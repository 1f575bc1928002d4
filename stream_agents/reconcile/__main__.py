import sys

from stream_agents.reconcile import main

sys.exit(main())
