package qcache

import "strings"

// ctlKind is the kind of a transaction-control statement.
type ctlKind uint8

const (
	ctlNone       ctlKind = iota
	ctlBegin              // BEGIN …, START TRANSACTION …
	ctlCommit             // COMMIT, END
	ctlRollback           // ROLLBACK, ABORT
	ctlSavepoint          // SAVEPOINT name
	ctlRelease            // RELEASE [SAVEPOINT] name
	ctlRollbackTo         // ROLLBACK [TRANSACTION|WORK] TO [SAVEPOINT] name
	ctlSetTx              // SET TRANSACTION …
)

// txControl is a transaction-control statement recognised by parseControl.
type txControl struct {
	kind ctlKind
	// name is the savepoint name (SAVEPOINT, RELEASE, ROLLBACK TO) as
	// written, without its quotes; "" when it could not be read, which
	// then stands for any name.
	name string
	// strict: BEGIN or SET TRANSACTION asks for REPEATABLE READ or
	// SERIALIZABLE, or for a mode the lexer does not know.
	strict bool
	// chain: COMMIT/ROLLBACK AND CHAIN opens a new transaction at once.
	chain bool
}

// parseControl recognises a single transaction-control statement: BEGIN
// [DEFERRED|IMMEDIATE|EXCLUSIVE] [TRANSACTION|WORK] [modes], START
// TRANSACTION [modes], COMMIT|END|ROLLBACK|ABORT [TRANSACTION|WORK] [AND
// [NO] CHAIN], SAVEPOINT, RELEASE [SAVEPOINT], ROLLBACK [TRANSACTION|WORK]
// TO [SAVEPOINT], SET TRANSACTION modes. It reads only the leading
// keywords, skipping white space and comments, case-insensitively; a
// statement followed by another one (after a ";") is not recognised.
//
// It is meant to be cheap on the statements it does not recognise: most
// return after reading their first word.
func parseControl(sql string) (txControl, bool) {
	l := lexer{s: sql}
	w := l.word()
	var c txControl
	switch len(w) {
	case 3:
		switch {
		case strings.EqualFold(w, "END"):
			c.kind = ctlCommit
			return c, l.endTx(&c)
		case strings.EqualFold(w, "SET"):
			if !l.keyword("TRANSACTION") {
				return c, false
			}
			c.kind = ctlSetTx
			c.strict = l.modes()
			return c, l.end() || l.single()
		}
	case 5:
		switch {
		case strings.EqualFold(w, "BEGIN"):
			c.kind = ctlBegin
			if l.keyword("DEFERRED") || l.keyword("IMMEDIATE") || l.keyword("EXCLUSIVE") {
				// SQLite: no modes follow.
				if l.keyword("TRANSACTION") {
					l.ident() // SQLite's optional transaction name
				}
				if l.end() {
					return c, true
				}
				c.strict = true
				return c, l.single()
			}
			if l.keyword("TRANSACTION") || l.keyword("WORK") {
				if l.end() {
					return c, true
				}
			}
			// Any statement that starts with BEGIN opens a transaction
			// when it succeeds: modes the lexer does not know make it
			// strict rather than unrecognised.
			c.strict = l.modes()
			return c, l.end() || l.single()
		case strings.EqualFold(w, "START"):
			if !l.keyword("TRANSACTION") {
				return c, false
			}
			c.kind = ctlBegin
			c.strict = l.modes()
			return c, l.end() || l.single()
		case strings.EqualFold(w, "ABORT"):
			c.kind = ctlRollback
			return c, l.endTx(&c)
		}
	case 6:
		if strings.EqualFold(w, "COMMIT") {
			c.kind = ctlCommit
			return c, l.endTx(&c)
		}
	case 7:
		if strings.EqualFold(w, "RELEASE") {
			c.kind = ctlRelease
			l.keyword("SAVEPOINT")
			c.name = l.savepointName()
			return c, l.end()
		}
	case 8:
		if strings.EqualFold(w, "ROLLBACK") {
			c.kind = ctlRollback
			l.txWord()
			if !l.keyword("TO") {
				return c, l.endTx(&c)
			}
			c.kind = ctlRollbackTo
			l.keyword("SAVEPOINT")
			c.name = l.savepointName()
			return c, l.end()
		}
	case 9:
		if strings.EqualFold(w, "SAVEPOINT") {
			c.kind = ctlSavepoint
			c.name = l.savepointName()
			return c, l.end()
		}
	}
	return txControl{}, false
}

// lexer reads the leading keywords of a statement.
type lexer struct {
	s string
	i int
	// bad: a comment the lexer cannot read the way every dialect does (an
	// unterminated one, or "/*" inside one, which PostgreSQL nests and
	// SQLite does not).
	bad bool
}

// skip skips white space and comments.
func (l *lexer) skip() {
	for l.i < len(l.s) {
		switch c := l.s[l.i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			l.i++
		case c == '-' && l.i+1 < len(l.s) && l.s[l.i+1] == '-':
			j := strings.IndexByte(l.s[l.i:], '\n')
			if j < 0 {
				l.i = len(l.s)
				return
			}
			l.i += j + 1
		case c == '/' && l.i+1 < len(l.s) && l.s[l.i+1] == '*':
			j := strings.Index(l.s[l.i+2:], "*/")
			if j < 0 || strings.Contains(l.s[l.i+2:l.i+2+j], "/*") {
				l.bad = true
				l.i = len(l.s)
				return
			}
			l.i += 2 + j + 2
		default:
			return
		}
	}
}

// isWordByte reports whether c may appear in an unquoted identifier or
// keyword (bytes of multi-byte UTF-8 characters included).
func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '$' || c >= 0x80
}

// word reads the next unquoted word, or returns "" (and reads nothing).
func (l *lexer) word() string {
	l.skip()
	j := l.i
	for j < len(l.s) && isWordByte(l.s[j]) {
		j++
	}
	w := l.s[l.i:j]
	l.i = j
	return w
}

// keyword reads the next word if it is kw (upper case), case-insensitively.
func (l *lexer) keyword(kw string) bool {
	save := l.i
	if w := l.word(); strings.EqualFold(w, kw) {
		return true
	}
	l.i = save
	return false
}

// ident reads an identifier, unquoted or quoted with double quotes,
// backquotes or brackets (a doubled closing quote stands for itself), and
// returns it without its quotes; ok is false (and nothing is read) when
// there is none.
func (l *lexer) ident() (name string, ok bool) {
	l.skip()
	if l.i >= len(l.s) {
		return "", false
	}
	var closing byte
	switch l.s[l.i] {
	case '"':
		closing = '"'
	case '`':
		closing = '`'
	case '[':
		closing = ']'
	default:
		save := l.i
		if w := l.word(); w != "" {
			return w, true
		}
		l.i = save
		return "", false
	}
	var b strings.Builder
	for j := l.i + 1; j < len(l.s); j++ {
		if l.s[j] != closing {
			b.WriteByte(l.s[j])
			continue
		}
		if closing != ']' && j+1 < len(l.s) && l.s[j+1] == closing {
			b.WriteByte(closing)
			j++
			continue
		}
		if b.Len() == 0 {
			return "", false
		}
		l.i = j + 1
		return b.String(), true
	}
	return "", false
}

// savepointName reads a savepoint name and returns it without quotes, or
// "" (which matches any name) when it cannot read one or something it does
// not read follows (PostgreSQL's U&"…" form). It then skips to the next
// ";", so that the caller's end() still tells one statement from several.
func (l *lexer) savepointName() string {
	name, ok := l.ident()
	if !ok || name == "" {
		l.skipToEnd()
		return ""
	}
	save := l.i
	if !l.end() {
		// Something follows that the lexer does not read (PostgreSQL's
		// U&"…" form, say): the name is not known.
		l.i = save
		l.skipToEnd()
		return ""
	}
	l.i = save
	return name
}

// skipToEnd moves to the end of the statement, or to a ";" that another
// statement follows (so that end() then fails), as far as a cheap scan can
// tell.
func (l *lexer) skipToEnd() {
	if j := strings.IndexByte(l.s[l.i:], ';'); j >= 0 {
		l.i += j
		return
	}
	l.i = len(l.s)
}

// end reports whether only white space, comments and one optional ";"
// remain; it reads them all if so, only the white space and comments
// before the next token if not.
func (l *lexer) end() bool {
	l.skip()
	save := l.i
	if l.i < len(l.s) && l.s[l.i] == ';' {
		l.i++
		l.skip()
	}
	if l.i == len(l.s) && !l.bad {
		return true
	}
	l.i = save
	return false
}

// single reports whether no ";" followed by another statement remains (as
// far as a cheap scan can tell: a ";" inside a literal counts too, and the
// statement is then not recognised).
func (l *lexer) single() bool {
	if l.bad {
		return false
	}
	j := strings.IndexByte(l.s[l.i:], ';')
	if j < 0 {
		return true
	}
	l.i += j
	return l.end()
}

// txWord reads the optional TRANSACTION or WORK after COMMIT, END,
// ROLLBACK or ABORT, with SQLite's optional transaction name.
func (l *lexer) txWord() {
	if !l.keyword("TRANSACTION") && !l.keyword("WORK") {
		return
	}
	save := l.i
	if w := l.word(); strings.EqualFold(w, "TO") || strings.EqualFold(w, "AND") {
		l.i = save
		return
	}
	l.i = save
	if _, ok := l.ident(); !ok {
		l.i = save
	}
}

// endTx reads the end of COMMIT, END, ROLLBACK or ABORT: [TRANSACTION|WORK
// [name]] [AND [NO] CHAIN]. The caller may have read the TRANSACTION part.
func (l *lexer) endTx(c *txControl) bool {
	l.txWord()
	if l.keyword("AND") {
		no := l.keyword("NO")
		if !l.keyword("CHAIN") {
			return false
		}
		c.chain = !no
	}
	return l.end()
}

// modes reads transaction modes (ISOLATION LEVEL …, READ WRITE|ONLY, [NOT]
// DEFERRABLE, separated by commas or spaces) up to the end of the
// statement, and reports whether they ask for REPEATABLE READ or
// SERIALIZABLE or hold anything it does not know.
func (l *lexer) modes() (strict bool) {
	for {
		l.skip()
		if l.i < len(l.s) && l.s[l.i] == ',' {
			l.i++
			continue
		}
		save := l.i
		if l.end() {
			l.i = save
			return strict
		}
		l.i = save
		switch w := strings.ToUpper(l.word()); w {
		case "ISOLATION":
			if !l.keyword("LEVEL") {
				return true
			}
			switch strings.ToUpper(l.word()) {
			case "SERIALIZABLE":
				strict = true
			case "REPEATABLE":
				if !l.keyword("READ") {
					return true
				}
				strict = true
			case "READ":
				if !l.keyword("COMMITTED") && !l.keyword("UNCOMMITTED") {
					return true
				}
			default:
				return true
			}
		case "READ":
			if !l.keyword("WRITE") && !l.keyword("ONLY") {
				return true
			}
		case "NOT":
			if !l.keyword("DEFERRABLE") {
				return true
			}
		case "DEFERRABLE":
		default:
			return true
		}
	}
}
