#!/bin/sh
exec "$(dirname "$0")/run-corpus.sh" topology_json
