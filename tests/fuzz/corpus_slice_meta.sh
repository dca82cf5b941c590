#!/bin/sh
exec "$(dirname "$0")/run-corpus.sh" slice_meta
