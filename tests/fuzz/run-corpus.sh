#!/bin/sh
# Replays a fuzz target's seed corpus (tests/fuzz/corpus/<target>/).
target=$1
exec "./fuzz_$target" "$(dirname "$0")"/corpus/"$target"/*
