#!/bin/sh
# The main job on the demo data: create the data folder and the POS drop
# folder, run the nightly full load job (load the extracts, generate the
# customer triggers, export everything and push it to the drop folder),
# then show the job, its run, and the status an operator sees.
# Usage: scripts/demo.sh POSBRIDGE CONFIG   (run from the repository root)
set -eu
pb=$1
config=$2
run() { echo "\$ posbridge $*"; "$pb" --config "$config" "$@"; }
run init
mkdir -p demo-data/pos/in
# The demo items include one with an unknown vendor: a warning, exit 0.
run run nightly-full
run jobs list
run runs show 1
echo "\$ ls demo-data/pos/in"
ls demo-data/pos/in
run status
