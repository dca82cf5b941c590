#!/bin/sh
exec "$(dirname "$0")/run-corpus.sh" cpu_manager_state
