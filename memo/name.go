package memo

import (
	"fmt"
	"reflect"
	"regexp"
	"runtime"
	"strings"
)

// unstableName matches the parts of runtime function names that are
// unstable or shared: closures (".func1", ".func2.3"), package-level
// function literals ("glob.") and generic instantiations ("[...]").
var unstableName = regexp.MustCompile(`\.func\d+|\bglob\.|\[\.\.\.\]`)

// funcName returns the name fn is known by at run time ("path/pkg.Func",
// "path/pkg.(*T).Method"), or an error wrapping ErrUnstableName when that
// name is not a safe base for keys.
func funcName(fn any) (string, error) {
	v := reflect.ValueOf(fn)
	if v.Kind() != reflect.Func || v.IsNil() {
		return "", fmt.Errorf("memo: cannot name %T", fn)
	}
	f := runtime.FuncForPC(v.Pointer())
	if f == nil {
		return "", fmt.Errorf("%w: no runtime name for %T", ErrUnstableName, fn)
	}
	name := strings.TrimSuffix(f.Name(), "-fm") // method values
	if unstableName.MatchString(name) {
		return "", fmt.Errorf("%w: %q", ErrUnstableName, name)
	}
	return name, nil
}
