package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/posbridge/posbridge/internal/db"
)

// Delivery statuses of a record sent to an http site. Started means the
// request went (or was about to) and no answer was recorded; failed means
// no answer that counts (the site out of reach). Either is sent again by
// the next run, with the same key.
const (
	DeliveryStarted  = "started"
	DeliveryDone     = "done"
	DeliveryRejected = "rejected"
	DeliveryFailed   = "failed"
)

// Delivery is one record (or one file) sent to an http site's endpoint,
// by its key.
type Delivery struct {
	ID         int64  `json:"id"`
	Site       string `json:"site"`
	Endpoint   string `json:"endpoint"`
	Key        string `json:"key"`
	LocalPath  string `json:"local_path"`
	Record     int    `json:"record"`
	Status     string `json:"status"`
	HTTPStatus int    `json:"http_status"`
	Attempts   int    `json:"attempts"`
	Error      string `json:"error"`
	RunID      int64  `json:"run_id"`
	CreatedAt  string `json:"created_at"`
	UpdatedAt  string `json:"updated_at"`
}

// StartDelivery records an attempt of a request for d's key: a new row, or
// the key's row again with one attempt more. A row left started is a
// request whose answer was never recorded (the run was killed): the next
// run sends it again, with the same key, as it does a key with no row. A
// writer that has the answer by the time it writes the row (d.Status set)
// writes the attempt and its answer in one.
func StartDelivery(ctx context.Context, q db.Execer, d Delivery) error {
	run := db.NullID(d.RunID)
	if d.Status == "" {
		d.Status = DeliveryStarted
	}
	now := db.Now()
	_, err := q.ExecContext(ctx, `INSERT INTO http_deliveries(site, endpoint, key, local_path, record, status, http_status, error, attempts, run_id, created_at, updated_at)
VALUES (?,?,?,?,?,?,?,?,1,?,?,?)
ON CONFLICT(site, endpoint, key) DO UPDATE SET status=excluded.status, attempts=http_deliveries.attempts+1, local_path=excluded.local_path,
 record=excluded.record, http_status=excluded.http_status, error=excluded.error, run_id=coalesce(excluded.run_id, http_deliveries.run_id), updated_at=excluded.updated_at`,
		d.Site, d.Endpoint, d.Key, d.LocalPath, d.Record, d.Status, d.HTTPStatus, d.Error, run, now, now)
	if err != nil {
		return fmt.Errorf("record delivery of %q: %w", d.Key, db.Classify(err))
	}
	return nil
}

// EndDelivery records the answer to d's started request: d.Status done,
// rejected (with the partner's message in d.Error) or failed (no answer
// that counts: sent again by the next run, with the same key), and the
// answer's status code.
func EndDelivery(ctx context.Context, q db.Execer, d Delivery) error {
	_, err := q.ExecContext(ctx, `UPDATE http_deliveries SET status=?, http_status=?, error=?, updated_at=? WHERE site=? AND endpoint=? AND key=?`,
		d.Status, d.HTTPStatus, d.Error, db.Now(), d.Site, d.Endpoint, d.Key)
	if err != nil {
		return fmt.Errorf("record delivery of %q: %w", d.Key, db.Classify(err))
	}
	return nil
}

// ListDeliveries streams the delivery ledger in id order to fn, optionally
// only one site, status or run.
func ListDeliveries(ctx context.Context, d *db.DB, f TransferFilter, fn func(Delivery) error) error {
	q := `SELECT id, site, endpoint, key, local_path, record, status, http_status, attempts, error, coalesce(run_id, 0), created_at, updated_at
FROM http_deliveries WHERE 1=1`
	var args []any
	if f.RunID > 0 {
		q += ` AND run_id = ?`
		args = append(args, f.RunID)
	}
	if f.Site != "" {
		q += ` AND site = ?`
		args = append(args, f.Site)
	}
	if f.Status != "" {
		q += ` AND status = ?`
		args = append(args, f.Status)
	}
	rows, err := d.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return fmt.Errorf("list deliveries: %w", db.Classify(err))
	}
	defer rows.Close()
	for rows.Next() {
		var x Delivery
		if err := rows.Scan(&x.ID, &x.Site, &x.Endpoint, &x.Key, &x.LocalPath, &x.Record, &x.Status, &x.HTTPStatus, &x.Attempts,
			&x.Error, &x.RunID, &x.CreatedAt, &x.UpdatedAt); err != nil {
			return err
		}
		if err := fn(x); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Watermark is the since value the last finished pull of an endpoint
// used as its start, "" before the first.
func Watermark(ctx context.Context, q db.Querier, site, endpoint string) (string, error) {
	var s string
	err := q.QueryRowContext(ctx, `SELECT since FROM http_watermarks WHERE site = ? AND endpoint = ?`, site, endpoint).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read watermark: %w", db.Classify(err))
	}
	return s, nil
}

// SetWatermark stores the since value of an endpoint's next pull.
func SetWatermark(ctx context.Context, q db.Execer, site, endpoint, since string) error {
	_, err := q.ExecContext(ctx, `INSERT INTO http_watermarks(site, endpoint, since, updated_at) VALUES (?,?,?,?)
ON CONFLICT(site, endpoint) DO UPDATE SET since=excluded.since, updated_at=excluded.updated_at`, site, endpoint, since, db.Now())
	if err != nil {
		return fmt.Errorf("record watermark: %w", db.Classify(err))
	}
	return nil
}

// PageFetched says whether a page with this sha256 was already pulled
// from the endpoint of an http site (remote_path is the endpoint).
func PageFetched(ctx context.Context, q db.Querier, site, endpoint, sum string) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM transfers
WHERE site = ? AND remote_path = ? AND direction = 'pull' AND sha256 = ? AND status = 'done'`, site, endpoint, sum).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("read transfer ledger: %w", db.Classify(err))
	}
	return n > 0, nil
}

// AnsweredKeys are the keys among keys that an endpoint of a site has
// answered (delivered or refused): the records a push does not send
// again. One query per few hundred keys.
func AnsweredKeys(ctx context.Context, q db.Querier, site, endpoint string, keys []string) (map[string]bool, error) {
	const chunk = 500
	out := map[string]bool{}
	for len(keys) > 0 {
		part := keys[:min(chunk, len(keys))]
		keys = keys[len(part):]
		args := make([]any, 0, len(part)+4)
		args = append(args, site, endpoint, DeliveryDone, DeliveryRejected)
		for _, k := range part {
			args = append(args, k)
		}
		rows, err := q.QueryContext(ctx, `SELECT key FROM http_deliveries WHERE site = ? AND endpoint = ? AND status IN (?, ?)
AND key IN (?`+strings.Repeat(",?", len(part)-1)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("read delivery ledger: %w", db.Classify(err))
		}
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read delivery ledger: %w", db.Classify(err))
			}
			out[k] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read delivery ledger: %w", db.Classify(err))
		}
	}
	return out, nil
}
