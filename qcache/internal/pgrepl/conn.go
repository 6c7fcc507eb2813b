package pgrepl

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// ErrStreamEnded is returned by [Conn.Receive] when the server ended the
// replication stream without an error. The Conn is back in command mode.
var ErrStreamEnded = errors.New("pgrepl: server ended the replication stream")

// Conn is a replication connection to PostgreSQL (a walsender session
// started with replication=database). It runs replication commands and,
// after [Conn.StartReplication], receives the logical replication stream.
//
// A Conn is not safe for concurrent use: call [Conn.SendStandbyStatus]
// between calls of [Conn.Receive] (give Receive a context with a deadline
// to wake up regularly). Ordinary SQL belongs on a normal connection.
type Conn struct {
	pg *pgconn.PgConn
	// streaming is set once START_REPLICATION has switched the connection
	// to copy-both mode; replication commands fail from then on.
	streaming bool
}

// Connect opens a replication connection. dsn is a libpq connection
// string or URL as accepted by [pgconn.ParseConfig]; Connect adds
// replication=database itself. The role must have the REPLICATION
// attribute (or be a superuser).
func Connect(ctx context.Context, dsn string) (*Conn, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgrepl: connect: %w", err)
	}
	return ConnectConfig(ctx, cfg)
}

// ConnectConfig is [Connect] with a parsed configuration, for callers that
// set more run-time parameters (such as wal_sender_timeout, which may be
// set per connection). cfg must come from [pgconn.ParseConfig];
// ConnectConfig sets RuntimeParams["replication"] = "database" on a copy.
func ConnectConfig(ctx context.Context, cfg *pgconn.Config) (*Conn, error) {
	cfg = cfg.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = make(map[string]string)
	}
	cfg.RuntimeParams["replication"] = "database"
	pg, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgrepl: connect: %w", err)
	}
	return &Conn{pg: pg}, nil
}

// PgConn returns the underlying connection, for ParameterStatus, PID and
// the like. Sending or receiving on it directly breaks the Conn.
func (c *Conn) PgConn() *pgconn.PgConn { return c.pg }

// IdentifySystemResult is the answer to IDENTIFY_SYSTEM.
type IdentifySystemResult struct {
	SystemID string // unique cluster identifier: a uint64 in decimal, as the server sends it
	Timeline int32  // current timeline
	XLogPos  LSN    // current WAL flush position
	DBName   string // database connected to
}

// IdentifySystem runs IDENTIFY_SYSTEM.
func (c *Conn) IdentifySystem(ctx context.Context) (IdentifySystemResult, error) {
	var r IdentifySystemResult
	row, err := c.command(ctx, "IDENTIFY_SYSTEM", 4)
	if err != nil {
		return r, err
	}
	r.SystemID = row[0]
	tl, err := strconv.ParseInt(row[1], 10, 32)
	if err != nil {
		return r, fmt.Errorf("pgrepl: IDENTIFY_SYSTEM: timeline %q: %w", row[1], err)
	}
	r.Timeline = int32(tl)
	if r.XLogPos, err = ParseLSN(row[2]); err != nil {
		return r, fmt.Errorf("pgrepl: IDENTIFY_SYSTEM: %w", err)
	}
	r.DBName = row[3]
	return r, nil
}

// CreateSlot creates a logical replication slot for the pgoutput plugin
// and returns its consistent point: the stream of the slot holds every
// transaction that commits after it. A temporary slot is dropped when
// the connection ends (or on error); a permanent one keeps WAL on the
// server until it is dropped, so drop slots you no longer read.
//
// The slot is created without exporting a snapshot. Slot names consist
// of lower-case letters, digits and underscores, at most 63 bytes.
func (c *Conn) CreateSlot(ctx context.Context, name string, temporary bool) (consistentPoint LSN, err error) {
	if err := checkSlotName(name); err != nil {
		return 0, err
	}
	tmp := ""
	if temporary {
		tmp = " TEMPORARY"
	}
	// NOEXPORT_SNAPSHOT is the pre-15 spelling of (SNAPSHOT 'nothing');
	// PostgreSQL 15 still accepts it and older servers need it.
	row, err := c.command(ctx, "CREATE_REPLICATION_SLOT "+name+tmp+" LOGICAL pgoutput NOEXPORT_SNAPSHOT", 4)
	if err != nil {
		return 0, err
	}
	lsn, err := ParseLSN(row[1])
	if err != nil {
		return 0, fmt.Errorf("pgrepl: CREATE_REPLICATION_SLOT: consistent point: %w", err)
	}
	return lsn, nil
}

// DropSlot drops a replication slot. It fails (SQLSTATE 55006) while
// another connection streams from the slot. It cannot run on a Conn that
// is streaming; a slot may also be dropped from a normal connection with
// pg_drop_replication_slot(name).
func (c *Conn) DropSlot(ctx context.Context, name string) error {
	if err := checkSlotName(name); err != nil {
		return err
	}
	_, err := c.command(ctx, "DROP_REPLICATION_SLOT "+name, 0)
	return err
}

// StartReplication starts streaming the changes of slot from start with
// pgoutput protocol version 1 for the given publications. A zero start
// means the slot's confirmed_flush_lsn; the server never sends earlier
// transactions than that anyway. On success the connection is in
// streaming mode: read with [Conn.Receive] and confirm progress with
// [Conn.SendStandbyStatus]. A server error (unknown slot, slot in use)
// is returned wrapping [*pgconn.PgError] and leaves the Conn usable; when
// ctx ends first, the Conn is closed.
//
// NOTE: a publication that does not exist is reported only when the first
// change is decoded, as an error from Receive (SQLSTATE 42704).
func (c *Conn) StartReplication(ctx context.Context, slot string, start LSN, publications []string) error {
	if err := checkSlotName(slot); err != nil {
		return err
	}
	if len(publications) == 0 {
		return errors.New("pgrepl: start replication: no publications")
	}
	if c.streaming {
		return errors.New("pgrepl: start replication: already streaming")
	}
	// publication_names is a list of identifiers parsed like
	// search_path, inside a string literal: quote each name as an
	// identifier, then the whole list as a literal.
	names := make([]string, len(publications))
	for i, p := range publications {
		if p == "" || strings.IndexByte(p, 0) >= 0 {
			return fmt.Errorf("pgrepl: start replication: invalid publication name %q", p)
		}
		names[i] = `"` + strings.ReplaceAll(p, `"`, `""`) + `"`
	}
	list := strings.ReplaceAll(strings.Join(names, ","), `'`, `''`)
	sql := fmt.Sprintf("START_REPLICATION SLOT %s LOGICAL %s (proto_version '1', publication_names '%s')", slot, start, list)

	if err := c.send(ctx, &pgproto3.Query{String: sql}); err != nil {
		return fmt.Errorf("pgrepl: start replication: %w", err)
	}
	var pgErr error
	for {
		msg, err := c.pg.ReceiveMessage(ctx)
		if err != nil {
			// The server may still switch to streaming after we gave up:
			// the protocol state is unknown.
			_ = c.pg.Close(context.Background())
			return fmt.Errorf("pgrepl: start replication: %w", err)
		}
		switch msg := msg.(type) {
		case *pgproto3.CopyBothResponse:
			c.streaming = true
			return nil
		case *pgproto3.ErrorResponse:
			pgErr = pgconn.ErrorResponseToPgError(msg)
		case *pgproto3.ReadyForQuery:
			if pgErr == nil {
				pgErr = errors.New("server returned to idle without streaming")
			}
			return fmt.Errorf("pgrepl: start replication: %w", pgErr)
		case *pgproto3.NoticeResponse, *pgproto3.ParameterStatus, *pgproto3.NotificationResponse:
		default:
			_ = c.pg.Close(context.Background())
			return fmt.Errorf("pgrepl: start replication: unexpected %T", msg)
		}
	}
}

// Message is one message of the replication stream: [*XLogData] or
// [*Keepalive].
type Message interface{ isMessage() }

// XLogData carries one pgoutput message ('w'); decode Data with [Decode].
type XLogData struct {
	WALStart     LSN       // WAL position of the change (Commit: its EndLSN); 0/0 for Relation and Type messages
	ServerWALEnd LSN       // WAL position the server has sent up to; 0/0 for Relation and Type messages
	ServerTime   time.Time // server clock when it sent the message, UTC
	Data         []byte    // the pgoutput message; owned by the caller
}

// Keepalive is a primary keepalive message ('k'). When ReplyRequested is
// set, answer soon with [Conn.SendStandbyStatus]: the server ends the
// connection after wal_sender_timeout without a status update.
//
// Between transactions (after a Commit, before the next Begin) and once
// everything received before has been processed, ServerWALEnd may be
// confirmed as flushed: the server has sent every transaction that
// committed before it. Confirming it keeps the slot from holding WAL
// while the published tables see no writes.
type Keepalive struct {
	ServerWALEnd   LSN       // current end of WAL on the server
	ServerTime     time.Time // server clock, UTC
	ReplyRequested bool
}

func (*XLogData) isMessage()  {}
func (*Keepalive) isMessage() {}

// Receive waits for the next message of the replication stream. It
// returns when ctx is done (with an error wrapping ctx.Err(); the Conn
// stays usable and streaming), when the server sends an error (wrapping
// [*pgconn.PgError]; after an ERROR the Conn is back in command mode,
// after a FATAL one it is closed) or ends the stream ([ErrStreamEnded]),
// and on a network error (the Conn is then closed).
func (c *Conn) Receive(ctx context.Context) (Message, error) {
	if !c.streaming {
		return nil, errors.New("pgrepl: receive: not streaming")
	}
	for {
		msg, err := c.pg.ReceiveMessage(ctx)
		if err != nil {
			if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
				err = fmt.Errorf("%w (%w)", ctx.Err(), err)
			}
			return nil, fmt.Errorf("pgrepl: receive: %w", err)
		}
		switch msg := msg.(type) {
		case *pgproto3.CopyData:
			m, err := parseCopyData(msg.Data)
			if err != nil {
				return nil, fmt.Errorf("pgrepl: receive: %w", err)
			}
			return m, nil
		case *pgproto3.ErrorResponse:
			// An ERROR ends the stream and the server returns to
			// command mode; after a FATAL one pgconn has closed the
			// connection and does not get here.
			c.streaming = false
			pgErr := pgconn.ErrorResponseToPgError(msg)
			if err := c.drain(ctx); err != nil {
				return nil, fmt.Errorf("pgrepl: receive: %w (then %w)", pgErr, err)
			}
			return nil, fmt.Errorf("pgrepl: receive: %w", pgErr)
		case *pgproto3.CopyDone:
			// The server ends the stream: end ours too and wait for
			// the command to complete.
			c.streaming = false
			if err := c.send(ctx, &pgproto3.CopyDone{}); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrStreamEnded, err)
			}
			if err := c.drain(ctx); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrStreamEnded, err)
			}
			return nil, ErrStreamEnded
		case *pgproto3.CommandComplete:
			// The server ended the stream without CopyDone (PostgreSQL
			// 15 does so for a second stream in one session).
			c.streaming = false
			if err := c.drain(ctx); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrStreamEnded, err)
			}
			return nil, ErrStreamEnded
		case *pgproto3.NoticeResponse, *pgproto3.ParameterStatus, *pgproto3.NotificationResponse:
		default:
			c.streaming = false
			_ = c.pg.Close(context.Background())
			return nil, fmt.Errorf("pgrepl: receive: unexpected %T while streaming", msg)
		}
	}
}

// Lengths of the fixed parts of the copy-both messages.
const (
	xlogHeaderLen   = 1 + 8 + 8 + 8         // 'w', WAL start, WAL end, clock
	keepaliveLen    = 1 + 8 + 8 + 1         // 'k', WAL end, clock, reply
	standbyStatusLn = 1 + 8 + 8 + 8 + 8 + 1 // 'r', write, flush, apply, clock, reply
)

// parseCopyData parses the payload of a CopyData message of the stream.
// It copies what it keeps: pgconn reuses data on the next receive.
func parseCopyData(data []byte) (Message, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty CopyData", ErrMalformed)
	}
	switch data[0] {
	case 'w':
		if len(data) < xlogHeaderLen {
			return nil, fmt.Errorf("%w: XLogData of %d bytes, shorter than its %d-byte header", ErrMalformed, len(data), xlogHeaderLen)
		}
		return &XLogData{
			WALStart:     LSN(binary.BigEndian.Uint64(data[1:])),
			ServerWALEnd: LSN(binary.BigEndian.Uint64(data[9:])),
			ServerTime:   pgTime(int64(binary.BigEndian.Uint64(data[17:]))),
			Data:         append([]byte(nil), data[xlogHeaderLen:]...),
		}, nil
	case 'k':
		if len(data) != keepaliveLen {
			return nil, fmt.Errorf("%w: keepalive of %d bytes, want %d", ErrMalformed, len(data), keepaliveLen)
		}
		return &Keepalive{
			ServerWALEnd:   LSN(binary.BigEndian.Uint64(data[1:])),
			ServerTime:     pgTime(int64(binary.BigEndian.Uint64(data[9:]))),
			ReplyRequested: data[17] != 0,
		}, nil
	default:
		return nil, fmt.Errorf("%w: CopyData type %s", ErrUnknownMessage, typeName(data[0]))
	}
}

// StandbyStatus is a standby status update: how far the client has
// received (WALWrite), durably processed (WALFlush) and applied
// (WALApply) the stream. The server advances the slot's
// confirmed_flush_lsn to WALFlush and may then recycle older WAL; after
// a reconnect, streaming restarts from there. A zero LSN means
// "unknown" for WALWrite and WALApply; send the last confirmed value
// again rather than zero for WALFlush.
type StandbyStatus struct {
	WALWrite, WALFlush, WALApply LSN
	// ReplyRequested asks the server to answer at once with a keepalive.
	ReplyRequested bool
	// ClientTime is the client's clock sent with the update; zero means
	// time.Now().
	ClientTime time.Time
}

// encodeStandbyStatus builds the 'r' message.
func encodeStandbyStatus(s StandbyStatus) []byte {
	t := s.ClientTime
	if t.IsZero() {
		t = time.Now()
	}
	b := make([]byte, standbyStatusLn)
	b[0] = 'r'
	binary.BigEndian.PutUint64(b[1:], uint64(s.WALWrite))
	binary.BigEndian.PutUint64(b[9:], uint64(s.WALFlush))
	binary.BigEndian.PutUint64(b[17:], uint64(s.WALApply))
	binary.BigEndian.PutUint64(b[25:], uint64(pgMicros(t)))
	if s.ReplyRequested {
		b[33] = 1
	}
	return b
}

// SendStandbyStatus sends a standby status update on a streaming Conn.
func (c *Conn) SendStandbyStatus(ctx context.Context, s StandbyStatus) error {
	if !c.streaming {
		return errors.New("pgrepl: send standby status: not streaming")
	}
	if err := c.send(ctx, &pgproto3.CopyData{Data: encodeStandbyStatus(s)}); err != nil {
		return fmt.Errorf("pgrepl: send standby status: %w", err)
	}
	return nil
}

// StopReplication ends streaming and returns the Conn to command mode, so
// that it may run [Conn.DropSlot]. Messages the server sent before it saw
// the request are discarded: confirm only what [Conn.Receive] returned.
// When ctx ends first, the Conn is closed.
//
// NOTE: PostgreSQL 15 does not stream logical changes twice in one
// session: a second [Conn.StartReplication] on the same Conn succeeds, but
// the server ends that stream at once and Receive returns
// [ErrStreamEnded]. Open a new Conn to stream again.
func (c *Conn) StopReplication(ctx context.Context) error {
	if !c.streaming {
		return errors.New("pgrepl: stop replication: not streaming")
	}
	if err := c.send(ctx, &pgproto3.CopyDone{}); err != nil {
		return fmt.Errorf("pgrepl: stop replication: %w", err)
	}
	c.streaming = false
	if err := c.drain(ctx); err != nil {
		return fmt.Errorf("pgrepl: stop replication: %w", err)
	}
	return nil
}

// drain reads and discards the rest of the stream up to ReadyForQuery.
// It returns the server's error if one came, and closes the connection
// when it cannot read.
func (c *Conn) drain(ctx context.Context) error {
	var pgErr error
	for {
		msg, err := c.pg.ReceiveMessage(ctx)
		if err != nil {
			_ = c.pg.Close(context.Background())
			return err
		}
		switch msg := msg.(type) {
		case *pgproto3.ErrorResponse:
			pgErr = pgconn.ErrorResponseToPgError(msg)
		case *pgproto3.ReadyForQuery:
			return pgErr
		}
		// CopyData still in flight, the server's CopyDone,
		// CommandComplete ("COPY 0", then "START_REPLICATION"), notices:
		// nothing to act on.
	}
}

// Close closes the connection; the server then releases the slot it
// streamed from and drops it if it is temporary (asynchronously: the
// slot may show as active for a moment after Close returns). ctx bounds
// the wait for a clean goodbye.
func (c *Conn) Close(ctx context.Context) error {
	c.streaming = false
	if err := c.pg.Close(ctx); err != nil {
		return fmt.Errorf("pgrepl: close: %w", err)
	}
	return nil
}

// send writes msg to the server. ctx's deadline and cancellation
// interrupt the write; an interrupted or failed write leaves the
// protocol state unknown, so the connection is closed then.
func (c *Conn) send(ctx context.Context, msg pgproto3.FrontendMessage) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.pg.IsClosed() {
		return errors.New("connection closed")
	}
	if c.pg.IsBusy() {
		return errors.New("connection busy")
	}
	nc := c.pg.Conn()
	if d, ok := ctx.Deadline(); ok {
		_ = nc.SetWriteDeadline(d)
	}
	// On cancellation, a deadline in the past interrupts a blocked write.
	// done makes sure that deadline is set before we clear it below, so
	// it cannot leak into the next write.
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(done)
		_ = nc.SetWriteDeadline(time.Unix(1, 0))
	})
	fe := c.pg.Frontend()
	fe.Send(msg)
	err := fe.Flush()
	if !stop() {
		<-done
	}
	_ = nc.SetWriteDeadline(time.Time{})
	if err != nil {
		_ = c.pg.Close(context.Background())
		if ctx.Err() != nil {
			return fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return err
	}
	return nil
}

// command runs a replication command in simple query mode and returns the
// single row it answers, which must have cols columns (no row for 0).
func (c *Conn) command(ctx context.Context, sql string, cols int) ([]string, error) {
	verb, _, _ := strings.Cut(sql, " ")
	if c.streaming {
		return nil, fmt.Errorf("pgrepl: %s: connection is streaming", verb)
	}
	results, err := c.pg.Exec(ctx, sql).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("pgrepl: %s: %w", verb, err)
	}
	if cols == 0 {
		return nil, nil
	}
	if len(results) != 1 || len(results[0].Rows) != 1 || len(results[0].Rows[0]) != cols {
		return nil, fmt.Errorf("pgrepl: %s: %w: want one row of %d columns", verb, ErrMalformed, cols)
	}
	row := make([]string, cols)
	for i, v := range results[0].Rows[0] {
		row[i] = string(v)
	}
	return row, nil
}

// checkSlotName enforces PostgreSQL's rule for replication slot names,
// which also makes them safe to splice into replication commands.
func checkSlotName(name string) error {
	if name == "" || len(name) > 63 {
		return fmt.Errorf("pgrepl: invalid slot name %q: want 1 to 63 bytes", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return fmt.Errorf("pgrepl: invalid slot name %q: only lower-case letters, digits and underscores are allowed", name)
		}
	}
	return nil
}
