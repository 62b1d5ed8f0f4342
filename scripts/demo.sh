#!/bin/sh
# The main job on the demo data: create the data folder, load the master
# data in dependency order, generate the initial triggers, show the status.
# Usage: POSBRIDGE_DATA_DIR=DIR scripts/demo.sh POSBRIDGE DEMO_DIR
set -eu
pb=$1
demo=$2
run() { echo "\$ posbridge $*"; "$pb" "$@"; }
run init
for kind in warehouses vendors items customers invoices inventory; do
	# The demo items include one with an unknown vendor: a warning, exit 0.
	run load "$kind" "$demo/$kind.csv"
done
run trigger generate --type customer
run status
