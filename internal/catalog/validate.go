package catalog

import (
	"fmt"
	"strings"

	"github.com/posbridge/posbridge/internal/db"
)

// rejectWhere moves the staged rows matching cond (over alias s) to the
// rejects, with the message computed by the SQL expression msg.
func (l *loader) rejectWhere(cond, msg string, args ...any) error {
	return l.rejectFrom("stage s", cond, msg, args...)
}

// rejectFrom is rejectWhere over a FROM clause that names the staged row s.
func (l *loader) rejectFrom(from, cond, msg string, args ...any) error {
	cols := make([]string, len(l.k.plan.cols))
	for i, c := range l.k.plan.cols {
		cols[i] = fmt.Sprintf("s.%q", c.col)
	}
	groupKey := "NULL"
	if g := l.k.group; g != nil {
		groupKey = fmt.Sprintf("s.%q", g.by)
	}
	n, err := l.exec(`INSERT INTO rejects(src_line, rec, error, fields, staged, group_key)
SELECT s.src_line, s.rec, `+msg+`, CAST(`+l.jsonArray()+`(`+strings.Join(cols, ", ")+`) AS TEXT), 1, `+groupKey+`
FROM `+from+` WHERE `+cond, args...)
	if err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	l.res.Rejected += n
	_, err = l.exec(`DELETE FROM stage WHERE rec IN (SELECT rec FROM rejects WHERE staged = 1)`)
	return err
}

// jsonArray is the SQL function that makes a JSON array of its
// arguments, what the rejects table keeps a staged row's values as.
func (l *loader) jsonArray() string {
	if l.dialect == db.Postgres {
		return "json_build_array"
	}
	return "json_array"
}

// validateStaged runs the checks that need the whole file or the state.
func (l *loader) validateStaged() error {
	if err := l.rejectDuplicates(); err != nil {
		return err
	}
	if err := l.checkGroups(); err != nil {
		return err
	}
	rejected := l.res.Rejected
	if l.k.check != nil {
		if err := l.k.check(l); err != nil {
			return err
		}
	}
	for _, r := range l.k.refs {
		if err := l.checkRef(r); err != nil {
			return err
		}
	}
	if g := l.k.group; g != nil {
		if g.whole {
			if err := l.rejectWholeGroups(g); err != nil {
				return err
			}
		}
		// Later checks may have rejected a group's first row.
		if l.res.Rejected > rejected {
			return l.buildFirsts(g)
		}
	}
	return nil
}

// rejectDuplicates indexes the staging table by key: a unique index when
// the keys are unique, which is the common case and costs nothing more;
// otherwise a plain one, and every row whose key an earlier row has is
// rejected.
func (l *loader) rejectDuplicates() error {
	keys := l.k.plan.keyCols()
	if unique, err := l.createUniqueKey(quoteList(keys)); err != nil || unique {
		return err
	}
	if _, err := l.exec(fmt.Sprintf(`CREATE INDEX stage_key ON stage(%s)`, quoteList(keys))); err != nil {
		return err
	}
	var match, show []string
	for _, k := range keys {
		match = append(match, fmt.Sprintf("t.%q = s.%q", k, k))
		show = append(show, fmt.Sprintf("'%s ' || s.%q", l.k.plan.nameOf(k), k))
	}
	first := `(SELECT min(t.rec) FROM stage t WHERE ` + strings.Join(match, " AND ") + `)`
	return l.rejectWhere(`s.rec > `+first,
		`'duplicate key ' || `+strings.Join(show, ` || ' ' || `)+` || ': first on line ' || (SELECT f.src_line FROM stage f WHERE f.rec = `+first+`)`)
}

// createUniqueKey creates the unique index stage_key over cols, or
// reports false when two staged rows have the same key. It tries under a
// savepoint: on PostgreSQL a failed statement ends the transaction.
func (l *loader) createUniqueKey(cols string) (unique bool, err error) {
	if _, err := l.exec(`SAVEPOINT stage_key`); err != nil {
		return false, err
	}
	_, err = l.exec(`CREATE UNIQUE INDEX stage_key ON stage(` + cols + `)`)
	unique = err == nil
	if err != nil {
		if !db.IsConstraint(err) {
			return false, err
		}
		if _, err := l.exec(`ROLLBACK TO SAVEPOINT stage_key`); err != nil {
			return false, err
		}
	}
	_, err = l.exec(`RELEASE SAVEPOINT stage_key`)
	return unique, err
}

// buildFirsts (re)creates the table firsts: per group key its first staged
// line, and an action the merge may fill in.
func (l *loader) buildFirsts(g *group) error {
	steps := []string{
		l.dropTempSQL("firsts"),
		`CREATE TEMP TABLE firsts (key TEXT PRIMARY KEY, first INTEGER NOT NULL, action TEXT NOT NULL DEFAULT '')` + l.withoutRowid(),
		fmt.Sprintf(`INSERT INTO firsts(key, first) SELECT %q, min(rec) FROM stage GROUP BY %q`, g.by, g.by),
	}
	for _, q := range steps {
		if _, err := l.exec(q); err != nil {
			return err
		}
	}
	return nil
}

// checkGroups rejects rows of a record whose group-level fields differ from
// the record's first row.
func (l *loader) checkGroups() error {
	g := l.k.group
	if g == nil {
		return nil
	}
	if err := l.buildFirsts(g); err != nil {
		return err
	}
	var diff, names []string
	for _, c := range g.cols {
		diff = append(diff, fmt.Sprintf("f.%q IS DISTINCT FROM s.%q", c, c))
		names = append(names, fmt.Sprintf("CASE WHEN f.%q IS DISTINCT FROM s.%q THEN '%s, ' ELSE '' END", c, c, l.k.plan.nameOf(c)))
	}
	cond := "(" + strings.Join(diff, " OR ") + ")"
	msg := `'` + g.what + ` fields differ from line ' || f.src_line || ': ' || rtrim(` + strings.Join(names, " || ") + `, ', ')`
	if g.extra != "" {
		msg = `CASE WHEN ` + g.extra + ` THEN ` + g.extraMsg + ` ELSE ` + msg + ` END`
		cond = "(" + cond + " OR " + g.extra + ")"
	}
	from := fmt.Sprintf(`stage s JOIN firsts g ON g.key = s.%q JOIN stage f ON f.rec = g.first`, g.by)
	return l.rejectFrom(from, `s.rec <> g.first AND `+cond, msg)
}

// rejectWholeGroups rejects the remaining rows of every group that lost a
// row to a reject, whether at reading or later (rejects.group_key).
func (l *loader) rejectWholeGroups(g *group) error {
	return l.rejectWhere(fmt.Sprintf(`s.%q IN (SELECT group_key FROM rejects)`, g.by),
		fmt.Sprintf(`'%s ' || s.%q || ' not applied: another of its lines was rejected'`, g.by, g.by))
}

// ref is a reference from a staged row to a record of another kind.
type ref struct {
	// what names it in messages; show is an SQL expression of the value.
	what, show string
	// cond selects staged rows (alias s) whose reference is unknown.
	cond string
	// hard references are always rejected; soft ones follow
	// load.unknown_references.
	hard bool
}

const refSample = 20

func (l *loader) checkRef(r ref) error {
	if r.hard || l.opts.UnknownReferences == "reject" {
		return l.rejectWhere(r.cond, `'unknown `+r.what+` ' || `+r.show)
	}
	rows, err := l.conn.QueryContext(l.ctx, `SELECT s.src_line, `+r.show+` FROM stage s WHERE `+r.cond+` ORDER BY s.rec`)
	if err != nil {
		return err
	}
	var msgs []string
	var n int64
	for rows.Next() {
		n++
		if n > refSample {
			continue
		}
		var line int64
		var v string
		if err := rows.Scan(&line, &v); err != nil {
			rows.Close()
			return err
		}
		msgs = append(msgs, fmt.Sprintf("%s:%d: unknown %s %s (applied anyway; load.unknown_references=warn)", l.res.File, line, r.what, v))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, m := range msgs {
		l.warn("%s", m)
	}
	if rest := n - int64(len(msgs)); rest > 0 {
		l.res.Warnings += rest
		l.opts.Warn(fmt.Sprintf("%s: %d more rows with an unknown %s", l.res.File, rest, r.what))
	}
	return nil
}
