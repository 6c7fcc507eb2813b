package sqldeps

// Rewrite is a PostgreSQL write prepared by [RewritePostgres] to report
// the images of the rows it changes.
type Rewrite struct {
	// Returning is the statement with the requested columns of its target
	// appended to its RETURNING list (created when it had none), after the
	// statement's own items; for an INSERT … ON CONFLICT DO UPDATE they are
	// followed by a boolean column, true for a row that was updated rather
	// than inserted. It takes the statement's parameters.
	Returning string

	// Extra is the number of columns appended to every returned row.
	Extra int

	// UpdatedFlag reports that the last extra column is the updated flag.
	UpdatedFlag bool

	// HadReturning reports that the statement had a RETURNING list of its
	// own.
	HadReturning bool

	// PreImages is, for an UPDATE, a SELECT taking the statement's
	// parameters that locks (FOR UPDATE OF the target) and returns the rows
	// the UPDATE matches, at most limit+1 of them: with RowIDs, each row's
	// tableoid (int8) and ctid (text) first, then the requested columns.
	// Empty for other statements.
	PreImages string

	// PreImageArgs lists, for PreImages, the 1-based positions in the
	// statement's arguments of the arguments PreImages takes ($1, $2, …
	// in order): only those its FROM list and WHERE use.
	PreImageArgs []int

	// RowIDs reports that a row PreImages locks may stop matching the
	// UPDATE before it runs, or appear more than once: the UPDATE has a FROM
	// list, or a subquery or a function call in its WHERE. The caller then
	// identifies the locked rows by tableoid and ctid, counts each once, and
	// runs CheckLocked after the UPDATE.
	RowIDs bool

	// CheckLocked, with RowIDs, is a query taking one tid[] parameter (in
	// its text form, {"(0,1)","(0,2)"}) that returns the tableoid (int8) and
	// ctid (text) of the target's rows visible at those ctids. Run after
	// the UPDATE in its transaction, it returns the locked rows that the
	// UPDATE did not change (a changed row has a new version elsewhere).
	CheckLocked string
}
