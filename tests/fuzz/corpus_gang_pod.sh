#!/bin/sh
exec "$(dirname "$0")/run-corpus.sh" gang_pod
