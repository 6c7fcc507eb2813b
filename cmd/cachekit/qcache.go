package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/cachekit/cachekit/qcache"
)

// qcacheCommand is "cachekit qcache": the query cache's manual operations.
var qcacheCommand = &command{
	name:    "qcache",
	summary: "operate on a qcache query cache (invalidation)",
	help: `The qcache commands act on the query results that a qcache.GranularPolicy
keeps in a store, from outside the application: the counterpart of
django-cacheops' invalidate command. Run them after changing data behind the
application's back (another program, a migration, a manual fix, a batch run
under qcache.WithoutInvalidation).

(The query cache's statistics are counted by each application process and
are not in the store, so there is no qcache stats command.)`,
	sub: []*command{invalidateCommand},
}

// invalidateCommand is "cachekit qcache invalidate".
var invalidateCommand = &command{
	name:    "invalidate",
	summary: "invalidate cached queries: all, by table or by row",
	help: `invalidate removes cached query results from the store, as
qcache.GranularPolicy's InvalidateAll, InvalidateTables and InvalidateRow do:
every process sharing the store stops serving them at once. Each subcommand
takes -store (the application's store), -prefix (its GranularOptions.Prefix)
and -dialect (its GranularOptions.Dialect).`,
	sub: []*command{
		{
			name:    "all",
			summary: "invalidate every cached query",
			help: `all invalidates every cached query (and every qcache.CachedAs value) under
the prefix, as GranularPolicy.InvalidateAll does.

` + storeHelp,
			setup: setupInvalidateAll,
		},
		{
			name:    "table",
			summary: "invalidate every cached query that reads one of the tables",
			args:    "TABLE [TABLE...]",
			help: `table invalidates every cached query that reads one of the tables, as
GranularPolicy.InvalidateTables does.

` + namesHelp + "\n\n" + storeHelp,
			setup: setupInvalidateTable,
		},
		{
			name:    "row",
			summary: "invalidate the cached queries a row may affect",
			args:    "TABLE COLUMN=VALUE [COLUMN=VALUE...]",
			help: `row invalidates the cached queries that a row of TABLE with the given column
values may affect, as GranularPolicy.InvalidateRow does (and as a write of
that row through the application would): the queries whose WHERE equality
conditions the row matches, and those that read the whole table. For a row
that was updated, run it twice: with the old values and with the new ones.

Give every column that the table's cached queries select by (a primary key
alone is not enough when queries select by user_id, say). When a column
those queries need is missing, the whole table is invalidated instead, and
the output says so.

Values are text: qcache reads a number as the number, so id=5 matches the
integer 5 (and a numeric 5.00); other text is compared case-insensitively,
without trailing spaces. col= is the empty string. For SQL NULL, name the
column with -null (repeatable) instead of giving a value; a value NULL is the
text 'NULL', not SQL NULL.

` + namesHelp + "\n\n" + storeHelp,
			setup: setupInvalidateRow,
		},
	},
}

// namesHelp documents how table and column names are spelled.
const namesHelp = `Table and column names are folded as the dialect's SQL parser folds them in
the application's queries: unquoted names to lower case, "Quoted" names kept
as they are on postgres (sqlite ignores case). A table may be qualified by its
schema (app.posts); the default schema (public on postgres, main on sqlite)
may be given or left out. Quote names with the shell too: '"Posts"'.`

// policyFlags are the flags every invalidate subcommand takes: where the
// policy's keys are and how its names are spelled.
type policyFlags struct {
	store   *string
	prefix  *string
	dialect *string
	timeout *time.Duration

	// Set by check.
	spec *storeSpec
	d    qcache.Dialect
}

// newPolicyFlags registers the policy flags on fs.
func newPolicyFlags(fs *flag.FlagSet) *policyFlags {
	return &policyFlags{
		store:   storeFlag(fs),
		prefix:  fs.String("prefix", "qc:", "the policy's key `prefix` (GranularOptions.Prefix)"),
		dialect: fs.String("dialect", "postgres", "the application's SQL `dialect`: postgres or sqlite"),
		timeout: fs.Duration("timeout", 30*time.Second, "give up after this `duration`"),
	}
}

// check validates the flags; its errors are usageErrors.
func (f *policyFlags) check() error {
	switch *f.dialect {
	case "postgres", "postgresql":
		f.d = qcache.Postgres
	case "sqlite", "sqlite3":
		f.d = qcache.SQLite
	default:
		return usagef("-dialect %q: want postgres or sqlite", *f.dialect)
	}
	if *f.timeout <= 0 {
		return usagef("-timeout %v: want a positive duration", *f.timeout)
	}
	spec, err := parseStoreURL(*f.store)
	if err != nil {
		return err
	}
	f.spec = spec
	return nil
}

// with opens the store, builds the policy over it and calls fn with it,
// under the -timeout. It closes the store after fn.
func (f *policyFlags) with(ctx context.Context, fn func(context.Context, *qcache.GranularPolicy) error) (err error) {
	ctx, cancel := context.WithTimeout(ctx, *f.timeout)
	defer cancel()
	store, err := f.spec.open(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := store.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close store: %w", cerr)
		}
	}()
	p, err := qcache.NewGranularPolicy(qcache.GranularOptions{Store: store, Dialect: f.d, Prefix: *f.prefix})
	if err != nil {
		return err
	}
	return fn(ctx, p)
}

// setupInvalidateAll is "cachekit qcache invalidate all".
func setupInvalidateAll(fs *flag.FlagSet) action {
	pf := newPolicyFlags(fs)
	return func(ctx context.Context, stdout, _ io.Writer, args []string) error {
		if len(args) > 0 {
			return usagef("unexpected arguments %q: all takes none", args)
		}
		if err := pf.check(); err != nil {
			return err
		}
		return pf.with(ctx, func(ctx context.Context, p *qcache.GranularPolicy) error {
			if err := p.InvalidateAll(ctx); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "invalidated all cached queries (prefix %q)\n", *pf.prefix)
			return nil
		})
	}
}

// setupInvalidateTable is "cachekit qcache invalidate table".
func setupInvalidateTable(fs *flag.FlagSet) action {
	pf := newPolicyFlags(fs)
	return func(ctx context.Context, stdout, _ io.Writer, args []string) error {
		if len(args) == 0 {
			return usagef("no table given")
		}
		if err := pf.check(); err != nil {
			return err
		}
		var tables []string
		for _, a := range args {
			t, err := tableName(a, pf.d)
			if err != nil {
				return err
			}
			if !slices.Contains(tables, t) {
				tables = append(tables, t)
			}
		}
		return pf.with(ctx, func(ctx context.Context, p *qcache.GranularPolicy) error {
			if err := p.InvalidateTables(ctx, tables...); err != nil {
				return err
			}
			for _, t := range tables {
				fmt.Fprintf(stdout, "invalidated table %s\n", t)
			}
			return nil
		})
	}
}

// setupInvalidateRow is "cachekit qcache invalidate row".
func setupInvalidateRow(fs *flag.FlagSet) action {
	pf := newPolicyFlags(fs)
	var nulls []string
	fs.Func("null", "the `column` is SQL NULL in the row (repeatable)", func(s string) error {
		nulls = append(nulls, s)
		return nil
	})
	return func(ctx context.Context, stdout, _ io.Writer, args []string) error {
		if len(args) == 0 {
			return usagef("no table given")
		}
		if len(args) == 1 && len(nulls) == 0 {
			return usagef("no COLUMN=VALUE given for a row of %s", args[0])
		}
		if err := pf.check(); err != nil {
			return err
		}
		table, err := tableName(args[0], pf.d)
		if err != nil {
			return err
		}
		row, cols, err := parseRow(args[1:], nulls, pf.d)
		if err != nil {
			return err
		}
		return pf.with(ctx, func(ctx context.Context, p *qcache.GranularPolicy) error {
			before := p.Stats()
			if err := p.InvalidateRow(ctx, table, row); err != nil {
				return err
			}
			desc := describeRow(row, cols)
			if p.Stats().InvalidatedTables > before.InvalidatedTables {
				fmt.Fprintf(stdout, "invalidated table %s: the row %s lacks a column that cached queries of %s select by\n", table, desc, table)
				return nil
			}
			fmt.Fprintf(stdout, "invalidated row %s %s\n", table, desc)
			return nil
		})
	}
}

// parseRow parses COLUMN=VALUE arguments and -null columns into a row for
// InvalidateRow, and returns the column names in the order given.
func parseRow(args, nulls []string, d qcache.Dialect) (map[string]any, []string, error) {
	row := map[string]any{}
	var cols []string
	add := func(raw, col string, v any) error {
		if _, dup := row[col]; dup {
			return usagef("column %s given twice (%q)", col, raw)
		}
		row[col] = v
		cols = append(cols, col)
		return nil
	}
	for _, a := range args {
		name, value, ok := splitAssignment(a)
		if !ok {
			return nil, nil, usagef("%q: want COLUMN=VALUE (use -null COLUMN for SQL NULL)", a)
		}
		col, err := identName(name, d)
		if err != nil {
			return nil, nil, usagef("%q: %v", a, err)
		}
		if err := add(a, col, value); err != nil {
			return nil, nil, err
		}
	}
	for _, n := range nulls {
		col, err := identName(n, d)
		if err != nil {
			return nil, nil, usagef("-null %q: %v", n, err)
		}
		if err := add("-null "+n, col, nil); err != nil {
			return nil, nil, err
		}
	}
	return row, cols, nil
}

// splitAssignment splits COLUMN=VALUE at the first "=" outside a quoted
// column name.
func splitAssignment(s string) (name, value string, ok bool) {
	i := 0
	if strings.HasPrefix(s, `"`) {
		// Skip the quoted name: "" is an escaped quote.
		for i = 1; i < len(s); i++ {
			if s[i] == '"' {
				if i+1 < len(s) && s[i+1] == '"' {
					i++
					continue
				}
				break
			}
		}
	}
	j := strings.IndexByte(s[min(i, len(s)):], '=')
	if j < 0 {
		return "", "", false
	}
	j += min(i, len(s))
	return s[:j], s[j+1:], true
}

// describeRow formats row for the output, in the order of cols.
func describeRow(row map[string]any, cols []string) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		if v := row[c]; v == nil {
			parts[i] = c + " IS NULL"
		} else {
			parts[i] = fmt.Sprintf("%s=%q", c, v)
		}
	}
	return strings.Join(parts, " ")
}

// tableName folds a table name, possibly qualified by its schema, as the
// dialect's parser spells it in qcache's keys (see qcache.GranularOptions
// Tables): the default schema is dropped. Its errors are usageErrors.
func tableName(s string, d qcache.Dialect) (string, error) {
	parts, err := splitName(s, d)
	switch {
	case err != nil:
		return "", usagef("table %q: %v", s, err)
	case len(parts) > 2:
		return "", usagef("table %q: want TABLE or SCHEMA.TABLE", s)
	}
	if len(parts) == 2 && parts[0] == defaultSchema(d) {
		parts = parts[1:]
	}
	return strings.Join(parts, "."), nil
}

// identName folds a column name.
func identName(s string, d qcache.Dialect) (string, error) {
	parts, err := splitName(s, d)
	switch {
	case err != nil:
		return "", err
	case len(parts) != 1:
		return "", errors.New("want an unqualified column name")
	}
	return parts[0], nil
}

// defaultSchema is the schema qcache leaves out of table names.
func defaultSchema(d qcache.Dialect) string {
	if d == qcache.SQLite {
		return "main"
	}
	return "public"
}

// splitName splits a dotted SQL name into its folded parts: an unquoted
// part is folded to lower case (ASCII only on PostgreSQL, as its parser
// does), a "quoted" one is kept (with "" for a quote) on PostgreSQL, folded
// on SQLite, whose names are case-insensitive.
func splitName(s string, d qcache.Dialect) ([]string, error) {
	if s == "" {
		return nil, errors.New("empty name")
	}
	var parts []string
	for {
		var part string
		if strings.HasPrefix(s, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(s); i++ {
				if s[i] == '"' {
					if i+1 < len(s) && s[i+1] == '"' {
						b.WriteByte('"')
						i++
						continue
					}
					break
				}
				b.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New("unterminated quoted name")
			}
			part, s = b.String(), s[i+1:]
			if part == "" {
				return nil, errors.New("empty quoted name")
			}
			if d == qcache.SQLite {
				part = strings.ToLower(part)
			}
		} else {
			end := strings.IndexByte(s, '.')
			if end < 0 {
				end = len(s)
			}
			part, s = s[:end], s[end:]
			switch {
			case part == "":
				return nil, errors.New("empty name part")
			case strings.ContainsAny(part, "\" \t\n"):
				return nil, fmt.Errorf("%q: quote a name holding quotes or spaces", part)
			}
			part = foldUnquoted(part, d)
		}
		parts = append(parts, part)
		if s == "" {
			return parts, nil
		}
		if s[0] != '.' || len(s) == 1 {
			return nil, fmt.Errorf("unexpected %q after a name", s)
		}
		s = s[1:]
	}
}

// foldUnquoted folds an unquoted identifier as the dialect's parser does.
func foldUnquoted(s string, d qcache.Dialect) string {
	if d == qcache.SQLite {
		return strings.ToLower(s)
	}
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
