# Placeholder: the runner lands with its own commit (see docs/runner-protocol.md).
RUNNER_VERSION = '0.0.0'
import sys
sys.stderr.write('container-pool runner: placeholder\n')
sys.exit(3)
