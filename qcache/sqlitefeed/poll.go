package sqlitefeed

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cachekit/cachekit/qcache"
)

// changeLogTable is the table the ChangeLog triggers write.
const changeLogTable = "_qcache_changes"

// poller watches the file for commits by other connections on a dedicated
// connection (PRAGMA data_version is per connection: it changes when
// another connection commits).
type poller struct {
	c    *connector
	db   *sql.DB
	conn *sql.Conn

	cancel context.CancelFunc
	done   chan struct{} // closed when run returns

	// Used only by the goroutine running run (and startPoller before it).
	dataVer   int64
	schemaVer int64
	lastSeq   int64     // the last change-log entry read
	lastPrune time.Time // when old entries were last deleted
}

// plainConnector opens connections without a hook.
type plainConnector struct{ c *connector }

func (p plainConnector) Connect(context.Context) (driver.Conn, error) { return p.c.d.Open(p.c.dsn) }
func (p plainConnector) Driver() driver.Driver                        { return p.c.d }

// startPoller opens the poller's connection, installs the change log when
// asked, and starts the poller's goroutine.
func (c *connector) startPoller() error {
	ctx := context.Background()
	p := &poller{c: c, db: sql.OpenDB(plainConnector{c}), done: make(chan struct{})}
	conn, err := p.db.Conn(ctx)
	if err != nil {
		p.db.Close()
		return fmt.Errorf("sqlitefeed: open the poller's connection: %w", err)
	}
	p.conn = conn
	fail := func(err error) error {
		conn.Close()
		p.db.Close()
		return err
	}
	// data_version first: a commit after it is seen by the first poll.
	if p.dataVer, err = p.queryInt(ctx, "PRAGMA data_version"); err != nil {
		return fail(fmt.Errorf("sqlitefeed: read data_version: %w", err))
	}
	if c.opts.Foreign == ChangeLog {
		if err := p.install(ctx); err != nil {
			return fail(err)
		}
		if p.schemaVer, err = p.queryInt(ctx, "PRAGMA schema_version"); err != nil {
			return fail(fmt.Errorf("sqlitefeed: read schema_version: %w", err))
		}
		if p.lastSeq, err = p.queryInt(ctx, "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = '"+changeLogTable+"'), 0)"); err != nil {
			return fail(fmt.Errorf("sqlitefeed: read the change log: %w", err))
		}
	}
	var runCtx context.Context
	runCtx, p.cancel = context.WithCancel(ctx)
	c.poll = p
	go p.run(runCtx)
	return nil
}

// stop stops the poller and waits for it.
func (p *poller) stop() error {
	p.cancel()
	<-p.done
	return errors.Join(p.conn.Close(), p.db.Close())
}

func (p *poller) report(err error) {
	if err != nil && p.c.opts.OnError != nil {
		p.c.opts.OnError(err)
	}
}

// run polls until ctx is canceled.
func (p *poller) run(ctx context.Context) {
	defer close(p.done)
	t := time.NewTicker(p.c.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := p.poll(ctx); err != nil && ctx.Err() == nil {
			p.report(fmt.Errorf("sqlitefeed: poll: %w", err))
		}
	}
}

// poll reads data_version and, when another connection committed,
// invalidates what it changed.
func (p *poller) poll(ctx context.Context) error {
	v, err := p.queryInt(ctx, "PRAGMA data_version")
	if err != nil {
		return err
	}
	if v == p.dataVer {
		return nil
	}
	// Set once handled: a failure is retried at the next tick.
	if p.c.opts.Foreign == DataVersion {
		if err := p.c.p.InvalidateAll(ctx); err != nil {
			return err
		}
		p.dataVer = v
		return nil
	}
	sv, err := p.queryInt(ctx, "PRAGMA schema_version")
	if err != nil {
		return err
	}
	if sv != p.schemaVer {
		// New tables need triggers; DDL of another process invalidates
		// everything, as the policy does for DDL through the wrapper.
		if err := p.install(ctx); err != nil {
			return err
		}
		if err := p.c.p.InvalidateAll(ctx); err != nil {
			return err
		}
		if p.schemaVer, err = p.queryInt(ctx, "PRAGMA schema_version"); err != nil {
			return err
		}
	}
	if err := p.readLog(ctx); err != nil {
		return err
	}
	p.dataVer = v
	if time.Since(p.lastPrune) > p.c.opts.LogRetention/4 {
		p.lastPrune = time.Now()
		cut := time.Now().Add(-p.c.opts.LogRetention).Unix()
		if _, err := p.conn.ExecContext(ctx, "DELETE FROM "+changeLogTable+" WHERE ts < ?", cut); err != nil {
			return fmt.Errorf("delete old change-log entries: %w", err)
		}
	}
	return nil
}

// readLog reads the change-log entries after lastSeq and invalidates
// their rows, skipping those this database committed itself.
func (p *poller) readLog(ctx context.Context) error {
	rows, err := p.conn.QueryContext(ctx, "SELECT seq, nonce, tbl, cols, old, new FROM "+changeLogTable+" WHERE seq > ? ORDER BY seq", p.lastSeq)
	if err != nil {
		return err
	}
	defer rows.Close()
	var (
		images = map[string][]qcache.RowImage{}
		coarse = map[string]bool{}
		gap    bool
		last   = p.lastSeq
	)
	for rows.Next() {
		var (
			seq, nonce     int64
			tbl, cols      string
			oldImg, newImg sql.NullString
		)
		if err := rows.Scan(&seq, &nonce, &tbl, &cols, &oldImg, &newImg); err != nil {
			return err
		}
		if seq != last+1 {
			gap = true // entries deleted before this poller read them
		}
		last = seq
		if p.c.isOwn(seq, nonce) || coarse[tbl] {
			continue
		}
		var names []string
		if err := json.Unmarshal([]byte(cols), &names); err != nil {
			coarse[tbl] = true
			continue
		}
		for _, img := range []sql.NullString{oldImg, newImg} {
			if !img.Valid {
				continue
			}
			vals, err := decodeImage(img.String)
			if err != nil || len(vals) != len(names) || len(images[tbl]) >= p.c.opts.MaxImages {
				coarse[tbl] = true
				delete(images, tbl)
				break
			}
			images[tbl] = append(images[tbl], qcache.RowImage{Columns: names, Values: vals})
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rows.Close()
	var errs []error
	if gap {
		errs = append(errs, p.c.p.InvalidateAll(ctx))
	}
	for tbl := range coarse {
		errs = append(errs, p.c.p.InvalidateTables(ctx, tbl))
	}
	for tbl, imgs := range images {
		errs = append(errs, p.c.p.InvalidateImages(ctx, tbl, imgs...))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	p.lastSeq = last
	p.c.forgetOwn(last)
	return nil
}

// decodeImage decodes the values of one logged image: a JSON array of
// (typeof, value) pairs, reals as text with 17 digits, blobs in hex.
func decodeImage(s string) ([]driver.Value, error) {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var raw []any
	if err := d.Decode(&raw); err != nil {
		return nil, err
	}
	if len(raw)%2 != 0 {
		return nil, errors.New("odd image")
	}
	vals := make([]driver.Value, len(raw)/2)
	for i := range vals {
		typ, _ := raw[2*i].(string)
		v := raw[2*i+1]
		var err error
		switch typ {
		case "null":
			vals[i] = nil
		case "integer":
			n, _ := v.(json.Number)
			vals[i], err = strconv.ParseInt(string(n), 10, 64)
		case "real":
			s, _ := v.(string)
			vals[i], err = strconv.ParseFloat(s, 64)
		case "text":
			s, ok := v.(string)
			if !ok {
				err = errors.New("text not a string")
			}
			vals[i] = s
		case "blob":
			s, _ := v.(string)
			vals[i], err = hex.DecodeString(s)
		default:
			err = fmt.Errorf("unknown type %q", typ)
		}
		if err != nil {
			return nil, err
		}
	}
	return vals, nil
}

// install creates the change log and the triggers of every table that
// lacks them or whose triggers no longer list its columns, in one
// transaction. It changes nothing when all are in place, so that the
// pollers of several processes do not rewrite each other's triggers.
func (p *poller) install(ctx context.Context) (err error) {
	// IMMEDIATE: pollers of several processes may install at once, and a
	// deferred transaction that reads and then writes fails with
	// SQLITE_BUSY without waiting in WAL mode.
	tx := p.conn
	if _, err := tx.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("sqlitefeed: install the change log: %w", err)
	}
	defer func() {
		if err != nil {
			tx.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
			err = fmt.Errorf("sqlitefeed: install the change log: %w", err)
		}
	}()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+changeLogTable+` (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	ts INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER)),
	nonce INTEGER NOT NULL DEFAULT (random()),
	tbl TEXT NOT NULL,
	cols TEXT NOT NULL,
	old TEXT,
	new TEXT)`); err != nil {
		return err
	}
	existing := map[string]string{}
	rows, err := tx.QueryContext(ctx, `SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' AND name LIKE '\_qcache\_%' ESCAPE '\'`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var name, text string
		if err := rows.Scan(&name, &text); err != nil {
			rows.Close()
			return err
		}
		existing[name] = text
	}
	rows.Close()
	var tables []string
	rows, err = tx.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name <> '`+changeLogTable+`'`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, name)
	}
	rows.Close()
	for _, t := range tables {
		cols, err := tableColumns(ctx, tx, t)
		if err != nil {
			return err
		}
		for name, text := range triggers(t, cols) {
			if existing[name] == text {
				continue
			}
			if _, err := tx.ExecContext(ctx, "DROP TRIGGER IF EXISTS "+quoteIdent(name)); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, text); err != nil {
				return err
			}
		}
	}
	_, err = tx.ExecContext(ctx, "COMMIT")
	return err
}

// tableColumns returns the column names of table t.
func tableColumns(ctx context.Context, tx Execer, t string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, "SELECT name FROM pragma_table_info(?)", t)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		cols = append(cols, c)
	}
	return cols, rows.Err()
}

// triggers returns the CREATE TRIGGER statements that log the changes of
// table t, by trigger name.
func triggers(t string, cols []string) map[string]string {
	names, _ := json.Marshal(cols)
	image := func(ref string) string {
		parts := make([]string, len(cols))
		for i, c := range cols {
			x := ref + "." + quoteIdent(c)
			parts[i] = "typeof(" + x + "), CASE typeof(" + x + ") WHEN 'real' THEN printf('%!.17g', " + x +
				") WHEN 'blob' THEN hex(" + x + ") ELSE " + x + " END"
		}
		return "json_array(" + strings.Join(parts, ", ") + ")"
	}
	ins := "INSERT INTO " + changeLogTable + " (tbl, cols, old, new) VALUES (" + quoteString(t) + ", " + quoteString(string(names)) + ", "
	m := map[string]string{}
	for _, op := range []struct{ name, event, old, new string }{
		{"ins", "INSERT", "NULL", image("NEW")},
		{"upd", "UPDATE", image("OLD"), image("NEW")},
		{"del", "DELETE", image("OLD"), "NULL"},
	} {
		name := "_qcache_" + op.name + "_" + t
		m[name] = "CREATE TRIGGER " + quoteIdent(name) + " AFTER " + op.event + " ON " + quoteIdent(t) +
			" BEGIN " + ins + op.old + ", " + op.new + "); END"
	}
	return m
}

func quoteString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// queryInt runs a query returning one integer on the poller's connection.
func (p *poller) queryInt(ctx context.Context, query string) (int64, error) {
	var n int64
	err := p.conn.QueryRowContext(ctx, query).Scan(&n)
	return n, err
}

// Execer is what [DropTriggers] runs its statements on: a *sql.DB, *sql.Tx
// or *sql.Conn.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// DropTriggers drops the change-log triggers of every table (see
// [ChangeLog]). SQLite refuses to drop a column that a trigger reads, so
// a migration that drops columns calls it first, in the migration's own
// transaction: pollers reinstall the triggers of the new schema once it
// has committed, and bump the global epoch, which covers the writes made
// meanwhile.
func DropTriggers(ctx context.Context, db Execer) error {
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'trigger' AND name LIKE '\_qcache\_%' ESCAPE '\'`)
	if err != nil {
		return fmt.Errorf("sqlitefeed: list the change-log triggers: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return fmt.Errorf("sqlitefeed: list the change-log triggers: %w", err)
		}
		names = append(names, n)
	}
	rows.Close()
	for _, n := range names {
		if _, err := db.ExecContext(ctx, "DROP TRIGGER IF EXISTS "+quoteIdent(n)); err != nil {
			return fmt.Errorf("sqlitefeed: drop trigger %s: %w", n, err)
		}
	}
	return nil
}
