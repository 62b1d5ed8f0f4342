package export

import (
	"bufio"
	"context"
	"fmt"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/orders"
	"github.com/posbridge/posbridge/internal/partner"
	"github.com/posbridge/posbridge/internal/returns"
)

// OrderKinds are the order message exports by command name: the order
// events of the sales posting, the order status for the online store and
// the return updates (QC results) for an external OMS.
var OrderKinds = map[string]string{"order-events": orders.StreamEvents, "order-status": orders.StreamStatus,
	"return-updates": orders.StreamReturns}

// orderKind is the file kind of a stream: order_events, order_status or
// return_updates.
func orderKind(stream string) *kind {
	name := "order_events"
	switch stream {
	case orders.StreamStatus:
		name = "order_status"
	case orders.StreamReturns:
		name = "return_updates"
	}
	// Events and status carry names, addresses and phone numbers.
	return &kind{name: name, private: true}
}

// OrdersResult is what an order message export did: Result, and the
// order events and return updates held back because they cannot go out as
// the partner's page documents them (orders.Held: they stay ready; each is
// listed once).
type OrdersResult struct {
	*Result
	Held []orders.Held `json:"held,omitempty"`
}

// Partial says the export held messages back: they were not sent, so the
// run rejected records (exit 3) though it did all it could.
func (r *OrdersResult) Partial() bool { return r != nil && len(r.Held) > 0 }

// Orders exports the ready order messages of a stream (orders.StreamEvents,
// orders.StreamStatus or orders.StreamReturns) of partner p, as NDJSON files
// (one message per line) named <kind>_<yyyymmddThhmmssZ>_<seq>.ndjson in
// <Outbox>/partners/<partner>/ unless o.Dir says otherwise. Events are
// written as p's sales posting (its time format and channel type); an
// event that cannot be is held back, not claimed. The lifecycle is the one
// of every export: claimed, written, renamed, completed, recovered after a
// crash.
func Orders(ctx context.Context, d *db.DB, stream string, p partner.Profile, o Options) (*OrdersResult, error) {
	k := orderKind(stream)
	if o.Dir == "" {
		o.Dir = partnerDir(o.Outbox, p.Name)
	}
	o.defaults(k)
	o.Format = "ndjson"
	conn, r, end, err := begin(ctx, d, k, &o)
	res := &OrdersResult{Result: r}
	if err != nil {
		return res, err
	}
	defer end()
	events := stream == orders.StreamEvents
	if o.DryRun {
		switch stream {
		case orders.StreamEvents:
			res.Ready, res.Held, err = orders.ReadyEvents(ctx, conn, p)
		case orders.StreamReturns:
			res.Ready, res.Held, err = orders.ReadyChecked(ctx, conn, stream, p.Name, returns.CheckUpdate)
		default:
			res.Ready, err = orders.Ready(ctx, conn, stream, p.Name)
		}
		if err != nil || res.Ready == 0 {
			return res, err
		}
		res.ReadyRecords = res.Ready
		per := res.Ready
		if o.MaxRecords > 0 {
			per = int64(o.MaxRecords)
		}
		files, err := planFiles(ctx, conn, k.name, &o, res.Ready, per)
		res.Files = append(res.Files, files...)
		return res, err
	}
	// Every file's claim meets the held events again: list each once.
	seen := map[int64]bool{}
	claim := func(fileID int64, _ string) (int64, int64, error) {
		var n int64
		var held []orders.Held
		var err error
		switch stream {
		case orders.StreamEvents:
			n, held, err = orders.ClaimEvents(ctx, conn, p, fileID, o.RunID, o.MaxRecords)
		case orders.StreamReturns:
			n, held, err = orders.ClaimChecked(ctx, conn, stream, p.Name, fileID, o.RunID, o.MaxRecords, returns.CheckUpdate)
		default:
			n, err = orders.Claim(ctx, conn, stream, p.Name, fileID, o.RunID, o.MaxRecords)
		}
		for _, h := range held {
			if !seen[h.MessageID] {
				seen[h.MessageID] = true
				res.Held = append(res.Held, h)
			}
		}
		return n, n, err
	}
	write := func(fileID int64) func(emit func([]byte) error) error {
		return func(emit func([]byte) error) error {
			if events {
				return orders.EventMessages(ctx, conn, fileID, p, emit)
			}
			return orders.Messages(ctx, conn, fileID, emit)
		}
	}
	for {
		if err := prepareDir(k, o.Dir); err != nil {
			return res, err
		}
		f, fileID, err := startFile(ctx, conn, k, &o, claim)
		if err != nil || fileID == 0 {
			return res, err
		}
		w, err := writeLines(&o, f.Path, f.Records, write(fileID))
		// A written file has the records of its claim (writeLines).
		if err := finish(ctx, conn, k.name, fileID, &f, w, err, "its messages are ready again", o.Marker); err != nil {
			return res, err
		}
		res.Files = append(res.Files, f)
		if o.MaxRecords <= 0 {
			return res, nil
		}
	}
}

// writeLines writes the temporary file of path, one JSON line per record,
// and syncs it; records is what the claim promised. Order messages carry
// customer data: the file is for the owner only.
func writeLines(o *Options, path string, records int64, source func(emit func([]byte) error) error) (written, error) {
	return writeStream(o, path, 0o600, func(bw *bufio.Writer) (int64, error) {
		var n int64
		err := source(func(line []byte) error {
			n++
			bw.Write(line)
			return bw.WriteByte('\n')
		})
		if err == nil && n != records {
			err = fmt.Errorf("wrote %d records, the claim has %d", n, records)
		}
		return n, err
	})
}
