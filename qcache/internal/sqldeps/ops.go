package sqldeps

import "strconv"

// Op classifies a SELECT by what it returns, like the operations of
// django-cacheops (fetch, count, aggregate, exists). The classification
// looks at the outermost SELECT only.
type Op uint8

const (
	// OpFetch returns rows of the tables: any SELECT that is none of the
	// others (including UNIONs and window functions).
	OpFetch Op = iota + 1
	// OpCount is a SELECT of a single count(...) without GROUP BY.
	OpCount
	// OpAggregate is another SELECT with an aggregate function in its
	// select list, a GROUP BY or a HAVING.
	OpAggregate
	// OpExists is a SELECT of a single EXISTS (...) without FROM, or a
	// SELECT of constants only with LIMIT 1 (Django's exists()).
	OpExists
)

var opNames = [...]string{OpFetch: "fetch", OpCount: "count", OpAggregate: "aggregate", OpExists: "exists"}

// String returns the operation's name.
func (o Op) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// aggregates lists the aggregate functions of SQLite and PostgreSQL that
// the parsers do not mark as such (names in lower case).
var aggregates = map[string]bool{
	"count": true, "sum": true, "avg": true, "min": true, "max": true, "total": true,
	"group_concat": true, "string_agg": true, "array_agg": true, "json_agg": true,
	"jsonb_agg": true, "json_object_agg": true, "jsonb_object_agg": true,
	"json_group_array": true, "json_group_object": true, "bool_and": true,
	"bool_or": true, "every": true, "bit_and": true, "bit_or": true, "bit_xor": true,
	"stddev": true, "stddev_pop": true, "stddev_samp": true, "variance": true,
	"var_pop": true, "var_samp": true, "mode": true, "percentile_cont": true,
	"percentile_disc": true, "xmlagg": true, "any_value": true, "corr": true,
	"covar_pop": true, "covar_samp": true, "regr_count": true,
}

// Classify parses a SELECT and returns its operation. A statement that is
// not a SELECT, or that the parser cannot read, returns an error wrapping
// ErrUnsupported.
func Classify(d Dialect, sql string) (Op, error) {
	switch d {
	case Postgres:
		return classifyPostgres(sql)
	case SQLite:
		return classifySQLite(sql)
	}
	return 0, unsupported("unknown dialect %v", d)
}
