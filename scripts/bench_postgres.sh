# bench_postgres (sourced by scripts/bench.sh): issue 17's figures. The same
# data as the SQLite workloads (items.csv, customers.csv, tx.csv of
# bench_data, generated here when ONLY=postgres) with the state in PostgreSQL: a
# throwaway server of Debian's postgresql package on a free loopback port
# (as the postgres user when run as root), against psql's \copy of the same
# CSV into a plain table, \copy of the same joined rows out, and exports of
# 4 kinds from 4 processes at once against one after another. Writes
# postgres.rows (and pgcpu.log, the server CPU samples behind its server
# CPU figures); skipped with a message without PostgreSQL.
bench_postgres() {
	: >postgres.rows
	: >pgcpu.times
	: >pgcpu.log
	[ -f vendors.csv ] || $GEN -kind vendors -rows 5000 -seed 1 -o vendors.csv
	[ -f items.csv ] || $GEN -kind items -rows "$ROWS" -seed 1 -o items.csv
	[ -f items-1pct.csv ] || $GEN -kind items -rows "$ROWS" -seed 1 -change-pct 1 -o items-1pct.csv
	[ -f customers.csv ] || $GEN -kind customers -rows "$ROWS" -seed 1 -o customers.csv
	[ -f tx-wh.csv ] || $GEN -kind warehouses -rows 5 -o tx-wh.csv
	[ -f tx-items.csv ] || $GEN -kind items -rows 10000 -o tx-items.csv
	[ -f tx.csv ] || $GEN -kind transactions -rows "$ROWS" -item-rows 10000 -o tx.csv
	[ -f tx.xml ] || $GEN -kind transactions -rows "$ROWS" -item-rows 10000 -xml -o tx.xml
	[ -f tx.yaml ] || printf 'import:\n  allow_negative_on_hand: true\n' >tx.yaml
	pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
	if [ -z "$pgbin" ] || ! command -v psql >/dev/null 2>&1; then
		echo "bench: postgres skipped: PostgreSQL is not installed (apt-get install postgresql)"
		echo "| postgres | | | | skipped: PostgreSQL is not installed |" >postgres.rows
		return 0
	fi
	pg=$(pwd)/pg
	rm -rf "$pg" && mkdir -p "$pg"
	as_pg=""
	if [ "$(id -u)" = 0 ]; then
		chown postgres "$pg"
		as_pg="runuser -u postgres --"
	fi
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	$as_pg "$pgbin/initdb" -D "$pg/data" -U posbridge -A trust --locale=C -E UTF8 >"$pg/initdb.log" 2>&1 ||
		{ echo "bench: initdb failed:"; cat "$pg/initdb.log"; exit 1; }
	# The server's defaults but for the socket and port: durable commits
	# (fsync, synchronous_commit on), as a production server has them.
	$as_pg "$pgbin/pg_ctl" -D "$pg/data" -l "$pg/server.log" -w \
		-o "-p $port -k $pg -c listen_addresses=127.0.0.1 -c shared_buffers=256MB -c max_wal_size=4GB" start >/dev/null ||
		{ echo "bench: PostgreSQL did not start:"; cat "$pg/server.log"; exit 1; }
	trap '$as_pg "$pgbin/pg_ctl" -D "$pg/data" -m fast stop >/dev/null 2>&1' EXIT
	base="postgres://posbridge@127.0.0.1:$port"
	# pgcpu: CPU seconds the server has used so far: its processes' own
	# (the postmaster and its children) and those of the children it has
	# reaped (the postmaster's cutime and cstime). A child that ends while
	# its siblings are read moves its time into the postmaster's cutime,
	# unread or read twice: the read is taken again until the postmaster's
	# cutime and cstime are the same before and after it.
	tick=$(getconf CLK_TCK)
	# pgstat PID: the stat fields of PID after its command name (which may
	# hold spaces): utime, stime, cutime and cstime are the 12th to 15th.
	# Nothing, and false, once PID has ended.
	pgstat() { { read -r line <"/proc/$1/stat"; } 2>/dev/null && echo "${line##*) }"; }
	pgcpu() {
		pm=$(head -1 "$pg/data/postmaster.pid")
		while :; do
			own=$(pgstat "$pm") || { echo "bench: the PostgreSQL server is gone" >&2; exit 1; }
			# A child that ends meanwhile has no stat: under set -e its
			# false would end this function with no output.
			kids=$(for c in $(cat "/proc/$pm/task/$pm/children"); do pgstat "$c" || true; done)
			again=$(pgstat "$pm")
			[ "$(echo "$own" | cut -d' ' -f14,15)" = "$(echo "$again" | cut -d' ' -f14,15)" ] && break
		done
		printf '%s\n%s\n--\n' "$again" "$kids" >>pgcpu.log
		printf '%s\n%s\n' "$again" "$kids" | awk -v tick="$tick" '
			NR == 1 { t = $12 + $13 + $14 + $15; next }
			NF { t += $12 + $13 }
			END { printf "%.2f", t / tick }'
	}
	# idle: waits (up to a minute) for the server's autovacuum workers to
	# end, so that one woken by an earlier command's writes is not counted
	# as the next command's server CPU, then takes a checkpoint, so that
	# each command starts from the same state of the WAL: a checkpoint
	# that an earlier command's WAL started would otherwise run during the
	# next (the first load writes about 2 GB of it), which then logs the
	# full image of each page it changes (the floor of the first load took
	# 9.2 s after the load, 6.2 s alone).
	idle() {
		i=0
		while [ $i -lt 600 ] && [ "$(psql -X -At "$base/postgres" -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")" != 0 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		psql -X -q "$base/postgres" -c "CHECKPOINT"
	}
	# tpg NAME CMD...: t, and the server's CPU seconds during CMD (the
	# samples in pgcpu.log).
	tpg() {
		idle
		echo "== $1" >>pgcpu.log
		before=$(pgcpu)
		t "$@"
		# A sample that failed (empty) or went backwards is no figure:
		# n/a rather than a negative one.
		echo "$1 $(awk -v a="$before" -v b="$(pgcpu)" 'BEGIN {if (a == "" || b == "" || b + 0 < a + 0) print "n/a"; else printf "%.2f", b-a}')" >>pgcpu.times
	}
	srvcpu() { awk -v n="$1" '$1==n {print $2}' pgcpu.times; }
	psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@" >/dev/null; }
	psql_q "$base/postgres" -c "CREATE DATABASE pb" -c "CREATE DATABASE ref"
	export POSBRIDGE_DATABASE="$base/pb?sslmode=disable"
	ref="$base/ref?sslmode=disable"
	"$PB" init -q >/dev/null
	"$PB" load vendors vendors.csv -q >/dev/null

	# Loads against \copy of the same CSV into a plain table of text columns.
	cols=$(head -1 items.csv | tr -d '\r' | sed 's/\([a-z_]*\)/"\1" text/g')
	psql_q "$ref" -c "CREATE TABLE items_ref ($cols)"
	tpg pg_copy_items psql -X -q "$ref" -c "\\copy items_ref FROM 'items.csv' CSV HEADER"
	tpg pg_load_first "$PB" load items items.csv -q
	# The floor of a first load: psql writing the rows the load wrote (its
	# items, SKUs and SKU triggers, dumped from the state) into the same
	# empty tables of a second state, in one transaction, the secondary
	# indexes and the skus -> items key dropped and made again as the load
	# does. What the server must do for these rows, whoever sends them.
	psql_q "$POSBRIDGE_DATABASE" -c "\\copy (SELECT * FROM items ORDER BY item) TO 'floor-items.tsv'" \
		-c "\\copy (SELECT * FROM skus ORDER BY item, sku) TO 'floor-skus.tsv'" \
		-c "\\copy (SELECT file_code, record_key, sub_key, capture, status, created_at, updated_at FROM triggers WHERE file_code = 'SKU' ORDER BY id) TO 'floor-triggers.tsv'"
	psql_q "$base/postgres" -c "CREATE DATABASE floor"
	POSBRIDGE_DATABASE="$base/floor?sslmode=disable" "$PB" init -q >/dev/null
	POSBRIDGE_DATABASE="$base/floor?sslmode=disable" "$PB" load vendors vendors.csv -q >/dev/null
	cat >floor-load.sql <<'SQL'
CREATE TEMP TABLE rebuild AS
  SELECT 'DROP INDEX ' || quote_ident(indexname) AS drop, indexdef AS make FROM pg_indexes
  WHERE schemaname = 'public' AND tablename IN ('items', 'skus') AND indexdef NOT LIKE 'CREATE UNIQUE %'
  UNION ALL
  SELECT 'ALTER TABLE skus DROP CONSTRAINT ' || quote_ident(conname),
    'ALTER TABLE skus ADD CONSTRAINT ' || quote_ident(conname) || ' ' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE contype = 'f' AND conrelid = 'skus'::regclass AND confrelid = 'items'::regclass;
SELECT drop FROM rebuild \gexec
\copy items FROM 'floor-items.tsv'
\copy skus FROM 'floor-skus.tsv'
\copy triggers(file_code, record_key, sub_key, capture, status, created_at, updated_at) FROM 'floor-triggers.tsv'
SELECT make FROM rebuild \gexec
SQL
	tpg pg_floor_load psql -X -q -1 -v ON_ERROR_STOP=1 "$base/floor?sslmode=disable" -f floor-load.sql
	tpg pg_load_identical "$PB" load items items.csv -q
	tpg pg_load_identical_force "$PB" load items items.csv -q --force
	tpg pg_load_1pct "$PB" load items items-1pct.csv -q

	# Exports of every SKU trigger against \copy out of the same joined rows.
	psql_q "$POSBRIDGE_DATABASE" -c "UPDATE triggers SET status='processed', processed_at='2000-01-01T00:00:00Z'"
	"$PB" trigger generate --type item -q >/dev/null
	tpg pg_copy_out_items psql -X -q "$POSBRIDGE_DATABASE" -o /dev/null -c "\\copy (SELECT t.capture, i.item, i.description, i.item_class, i.vendor, i.status, k.sku, k.sku_description,
  k.color, k.size, k.width, k.upc, k.retail_ref, k.price, k.cost FROM triggers t JOIN skus k ON k.item = t.record_key AND k.sku = t.sub_key
  JOIN items i ON i.item = k.item WHERE t.file_code = 'SKU' AND t.status = 'ready' ORDER BY i.item, k.sku) TO STDOUT CSV"
	tpg pg_export_items_csv "$PB" export items --format csv -q
	psql_q "$POSBRIDGE_DATABASE" -c "UPDATE triggers SET status='ready', file_id=NULL, processed_at=NULL
WHERE file_id = (SELECT max(id) FROM files WHERE direction = 'out' AND kind = 'items')"
	tpg pg_export_items_xml "$PB" export items --format xml -q

	# Four kinds from four processes at once against one after another, in
	# a database of their own: ROWS/4 items, customers, invoices and
	# inventory rows, each kind a file sequence and a lock of its own. Each
	# round starts from every record with one ready trigger.
	q=$((ROWS / 4))
	[ -f k-items.csv ] || $GEN -kind items -rows "$q" -seed 2 -o k-items.csv
	[ -f k-customers.csv ] || $GEN -kind customers -rows "$q" -seed 2 -o k-customers.csv
	[ -f k-invoices.csv ] || $GEN -kind invoices -rows "$q" -item-rows "$q" -seed 2 -o k-invoices.csv
	[ -f k-inventory.csv ] || $GEN -kind inventory -rows "$q" -item-rows "$q" -seed 2 -o k-inventory.csv
	psql_q "$base/postgres" -c "CREATE DATABASE kinds"
	kdb="$base/kinds?sslmode=disable"
	for step in "init" "load warehouses tx-wh.csv" "load vendors vendors.csv" "load items k-items.csv" \
		"load customers k-customers.csv" "load invoices k-invoices.csv" "load inventory k-inventory.csv"; do
		# shellcheck disable=SC2086
		POSBRIDGE_DATABASE="$kdb" "$PB" $step -q >/dev/null 2>&1 || { echo "bench: $step failed"; exit 1; }
	done
	ready_all() {
		psql_q "$kdb" -c "UPDATE triggers SET status = 'processed', processed_at = '2000-01-01T00:00:00Z' WHERE status <> 'processed'"
		for ty in item customer invoice inventory; do
			POSBRIDGE_DATABASE="$kdb" "$PB" trigger generate --type "$ty" -q >/dev/null
		done
		psql_q "$kdb" -c "ANALYZE"
	}
	kinds="items customers invoices inventory"
	since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b-a}'; }
	ready_all
	start=$(date +%s.%N)
	for k in $kinds; do
		POSBRIDGE_DATABASE="$kdb" "$PB" export "$k" --out "out-$k" -q >/dev/null || { echo "bench: export $k failed"; exit 1; }
	done
	seq_secs=$(since "$start")
	ready_all
	start=$(date +%s.%N)
	pids=""
	for k in $kinds; do
		POSBRIDGE_DATABASE="$kdb" "$PB" export "$k" --out "out-$k" -q >/dev/null &
		pids="$pids $!"
	done
	for p in $pids; do wait "$p" || { echo "bench: a parallel export failed"; exit 1; }; done
	par_secs=$(since "$start")

	# Inventory transactions against \copy of the same CSV, each import into
	# a fresh copy of a database holding the warehouses and items.
	psql_q "$base/postgres" -c "CREATE DATABASE txbase"
	POSBRIDGE_DATABASE="$base/txbase?sslmode=disable" "$PB" --config tx.yaml init -q >/dev/null
	POSBRIDGE_DATABASE="$base/txbase?sslmode=disable" "$PB" --config tx.yaml load warehouses tx-wh.csv -q >/dev/null
	POSBRIDGE_DATABASE="$base/txbase?sslmode=disable" "$PB" --config tx.yaml load items tx-items.csv -q >/dev/null 2>&1
	cols=$(head -1 tx.csv | tr -d '\r' | sed 's/\([a-z_]*\)/"\1" text/g')
	psql_q "$ref" -c "CREATE TABLE tx_ref ($cols)"
	tpg pg_copy_tx psql -X -q "$ref" -c "\\copy tx_ref FROM 'tx.csv' CSV HEADER"
	psql_q "$base/postgres" -c "CREATE DATABASE tx1 TEMPLATE txbase" -c "CREATE DATABASE tx2 TEMPLATE txbase"
	tpg pg_import_tx_csv env POSBRIDGE_DATABASE="$base/tx1?sslmode=disable" "$PB" --config tx.yaml import inventory-transactions tx.csv -q
	tpg pg_import_tx_xml env POSBRIDGE_DATABASE="$base/tx2?sslmode=disable" "$PB" --config tx.yaml import inventory-transactions tx.xml -q
	# The floor of an import: psql writing the history rows the CSV import
	# wrote (dumped from its state) into the same table of a fresh copy.
	hist="file_id, line, code, effect, item, sku, warehouse, location, quantity, before_on_hand, after_on_hand, to_item, to_sku, to_warehouse, to_location, to_before, to_after, reason, reference, txn_date, \"user\", applied_at"
	psql_q "$base/tx1?sslmode=disable" -c "\\copy (SELECT $hist FROM inventory_txns ORDER BY id) TO 'floor-history.tsv'"
	psql_q "$base/postgres" -c "CREATE DATABASE tx3 TEMPLATE txbase"
	tpg pg_floor_import psql -X -q "$base/tx3?sslmode=disable" -c "\\copy inventory_txns($hist) FROM 'floor-history.tsv'"
	# The same transactions again, as XML, onto the stock the CSV import
	# left: its 50,000 stock rows are updated rather than added (the usual
	# case in production, where the stock is there).
	tpg pg_import_tx_onto env POSBRIDGE_DATABASE="$base/tx1?sslmode=disable" "$PB" --config tx.yaml import inventory-transactions tx.xml -q

	pgver=$(psql -X -At "$ref" -c "SHOW server_version" | cut -d' ' -f1)
	{
		for n in pg_load_first pg_load_identical pg_load_identical_force pg_load_1pct; do
			printf '%s\n' "| $n ($ROWS SKU rows, PostgreSQL $pgver) | $(secs $n) | $(( $(kib $n) / 1024 )) | $(ratio $n pg_copy_items)x | psql \\copy into a plain table $(secs pg_copy_items) s, server CPU $(srvcpu pg_copy_items) s (target 3x); CPU: posbridge $(cpu $n) s, server $(srvcpu $n) s |"
		done
		printf '%s\n' "| pg_floor_load (psql writing the first load's items, SKUs and triggers into the same tables) | $(secs pg_floor_load) | | $(ratio pg_floor_load pg_copy_items)x | the first load is $(ratio pg_load_first pg_floor_load)x of it; server CPU $(srvcpu pg_floor_load) s |"
		for n in pg_export_items_csv pg_export_items_xml; do
			printf '%s\n' "| $n ($ROWS SKU triggers) | $(secs $n) | $(( $(kib $n) / 1024 )) | $(ratio $n pg_copy_out_items)x | psql \\copy out of the joined rows $(secs pg_copy_out_items) s, server CPU $(srvcpu pg_copy_out_items) s (target 3x); CPU: posbridge $(cpu $n) s, server $(srvcpu $n) s |"
		done
		for n in pg_import_tx_csv pg_import_tx_xml; do
			printf '%s\n' "| $n ($ROWS transactions) | $(secs $n) | $(( $(kib $n) / 1024 )) | $(ratio $n pg_copy_tx)x | psql \\copy of the CSV $(secs pg_copy_tx) s, server CPU $(srvcpu pg_copy_tx) s (target 3x); CPU: posbridge $(cpu $n) s, server $(srvcpu $n) s |"
		done
		printf '%s\n' "| pg_import_tx_onto (the XML import onto the CSV import's 50,000 stock rows: updated, not added) | $(secs pg_import_tx_onto) | $(( $(kib pg_import_tx_onto) / 1024 )) | $(ratio pg_import_tx_onto pg_copy_tx)x | psql \\copy of the CSV $(secs pg_copy_tx) s; CPU: posbridge $(cpu pg_import_tx_onto) s, server $(srvcpu pg_import_tx_onto) s |"
		printf '%s\n' "| pg_floor_import (psql writing the CSV import's history rows into the same table) | $(secs pg_floor_import) | | $(ratio pg_floor_import pg_copy_tx)x | the CSV import is $(ratio pg_import_tx_csv pg_floor_import)x of it; server CPU $(srvcpu pg_floor_import) s |"
		echo "| exports of 4 kinds ($kinds, $q records each) from 4 processes at once | $par_secs | | $(echo "$seq_secs $par_secs" | awk '{printf "%.2f", $1/$2}')x | one after another $seq_secs s (target 3x throughput; $(nproc) cores) |"
	} >postgres.rows
	$as_pg "$pgbin/pg_ctl" -D "$pg/data" -m fast stop >/dev/null 2>&1
	trap - EXIT
}
